#!/bin/sh
# Prints the path of a Python interpreter that can import fastapi and uvicorn,
# installing them if needed. Only the path goes to stdout; everything else goes
# to stderr, so callers can write: PY=$(sh examples/chatbot/deps.sh).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)

has_deps() {
	"$1" -c 'import fastapi, uvicorn' >/dev/null 2>&1
}

for py in /usr/bin/python3 "$(command -v python3 || true)"; do
	if [ -n "$py" ] && [ -x "$py" ] && has_deps "$py"; then
		echo "$py"
		exit 0
	fi
done

# Debian's packages first: they are what the tests were written against.
if command -v apt-get >/dev/null 2>&1; then
	sudo=
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
			sudo="sudo -n"
		else
			sudo=none
		fi
	fi
	if [ "$sudo" != none ]; then
		echo "deps.sh: installing python3-fastapi python3-uvicorn with apt-get" >&2
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			python3-fastapi python3-uvicorn python3-websockets >&2
		if has_deps /usr/bin/python3; then
			echo /usr/bin/python3
			exit 0
		fi
	fi
fi

py=$(command -v python3 || true)
if [ -n "$py" ] && "$py" -m pip --version >/dev/null 2>&1; then
	echo "deps.sh: installing $here/requirements.txt with $py -m pip" >&2
	if "$py" -m pip install -q -r "$here/requirements.txt" >&2 && has_deps "$py"; then
		echo "$py"
		exit 0
	fi
fi

echo "deps.sh: no python3 with fastapi and uvicorn, and neither apt-get nor pip could install them" >&2
exit 1
