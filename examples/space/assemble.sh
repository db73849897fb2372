#!/usr/bin/env bash
# Assembles a ready-to-push folder for a Python-runtime Hugging Face Space (no Dockerfile) that
# runs a FastAPI backend behind hfgate. `make space` calls it; see docs/deploy-hf-spaces.md.
#
#   bash examples/space/assemble.sh BACKEND APP OUT
#
# BACKEND  folder with the FastAPI app (copied to OUT/backend; its requirements.txt, if any, is
#          merged into OUT/requirements.txt, with fastapi and uvicorn added when absent)
# APP      the ASGI app as module:attribute, relative to BACKEND (e.g. app:app)
# OUT      the Space folder to write; created if needed. Files the kit writes are replaced, others
#          (a .git directory, your own files) are kept, but OUT/backend is replaced whole.
#
# Environment (all optional):
#   GO              the go command (default: go)
#   LDFLAGS         linker flags for the binary (make passes -s -w and the version stamp)
#   TITLE           Space title in the README front matter (default: OUT's folder name)
#   PYTHON_VERSION  python_version in the front matter (default: 3.12)
#   SDK_VERSION     Gradio sdk_version in the front matter (default: 6.3.0)
#   STARTUP_TIMEOUT startup_duration_timeout in the front matter (default: 30m)
set -euo pipefail

die() {
	echo "assemble: $*" >&2
	exit 2
}

[ $# -eq 3 ] || die "usage: assemble.sh BACKEND APP OUT (make space BACKEND=dir APP=module:attr OUT=dir)"
backend=$1 app=$2 out=$3
kit=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH='' cd -- "$kit/../.." && pwd)

[ -d "$backend" ] || die "BACKEND $backend is not a folder"
[[ "$app" =~ ^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$ ]] ||
	die "APP must be module:attribute, such as app:app or server.main:api (got $app)"
module=${app%%:*}
modpath=${module//.//}
[ -f "$backend/$modpath.py" ] || [ -f "$backend/$modpath/__init__.py" ] ||
	die "APP module $module not found in $backend (looked for $modpath.py and $modpath/__init__.py)"
[ -n "$out" ] && [ "$out" != / ] || die "OUT must name a folder"

backend_abs=$(CDPATH='' cd -- "$backend" && pwd)
mkdir -p "$out"
out_abs=$(CDPATH='' cd -- "$out" && pwd)
case "$out_abs/" in
"$backend_abs"/*) die "OUT ($out) must not be inside BACKEND ($backend)" ;;
esac
case "$backend_abs/" in
"$out_abs"/*) die "BACKEND ($backend) must not be inside OUT ($out)" ;;
esac

title=${TITLE:-$(basename -- "$out_abs")}
case "$title" in
*'|'* | *'&'* | *'\'* | *'"'*) die "TITLE must not contain | & \\ or \"" ;;
esac
python_version=${PYTHON_VERSION:-3.12}
sdk_version=${SDK_VERSION:-6.3.0}
startup_timeout=${STARTUP_TIMEOUT:-30m}

# 1. The binary: static, linux/amd64 (the Spaces hardware), trimmed and version stamped.
echo "assemble: building bin/hfgate (linux/amd64, static)" >&2
mkdir -p "$out_abs/bin"
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "${GO:-go}" build -trimpath \
	-ldflags "${LDFLAGS:--s -w}" -o "$out_abs/bin/hfgate" .)

# 2. The backend, without caches, virtual environments or VCS data.
echo "assemble: copying $backend to backend/" >&2
rm -rf "$out_abs/backend"
mkdir -p "$out_abs/backend"
(cd "$backend_abs" && tar -cf - \
	--exclude=.git --exclude=__pycache__ --exclude='*.pyc' --exclude=node_modules \
	--exclude=.venv --exclude=venv --exclude=.pytest_cache --exclude=.mypy_cache . ) |
	(cd "$out_abs/backend" && tar -xf -)

# 3. requirements.txt: the backend's, plus fastapi and uvicorn when it does not name them.
# (The gradio runtime installs gradio itself; the launcher needs nothing but the stdlib.)
req="$out_abs/requirements.txt"
{
	echo "# Written by hfgate's make space from $backend/requirements.txt."
	if [ -f "$backend_abs/requirements.txt" ]; then
		cat "$backend_abs/requirements.txt"
		echo
	fi
} >"$req"
for pkg in fastapi uvicorn; do
	# A requirement line starts with the package name, in any case, - and _ alike, then a
	# version specifier, an extra ([standard]), a marker (;) or the end.
	if ! grep -Eiq "^[[:space:]]*${pkg}[[:space:]]*([[<>=!~;@ ]|$)" "$req"; then
		echo "$pkg" >>"$req"
	fi
done

# 4. The launcher, with the ASGI app filled in.
sed "s|^APP = \"app:app\"|APP = \"$app\"|" "$kit/app.py" >"$out_abs/app.py"
grep -q "^APP = \"$app\"\$" "$out_abs/app.py" || die "could not set APP in app.py"

# 5. README.md with the Spaces front matter.
sed -e "s|{{TITLE}}|$title|g" -e "s|{{PYTHON_VERSION}}|$python_version|g" \
	-e "s|{{SDK_VERSION}}|$sdk_version|g" -e "s|{{STARTUP_TIMEOUT}}|$startup_timeout|g" \
	-e "s|{{APP}}|$app|g" "$kit/README.space.md" >"$out_abs/README.md"

# 6. Git attributes: the binary goes through Git LFS/Xet, never as a plain blob. A Space's
# repository starts with a .gitattributes of its own: the line is added to it, not over it.
attrs="$out_abs/.gitattributes"
line='bin/** filter=lfs diff=lfs merge=lfs -text'
if ! grep -qxF "$line" "$attrs" 2>/dev/null; then
	echo "$line" >>"$attrs"
fi

echo "assemble: wrote $out (try it: cd $out && python app.py)" >&2
