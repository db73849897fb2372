package e2e

// The hfgate wheel (make wheel, python/build_wheel.py) and the Python package in it
// (python/hfgate): its layout read back from the zip, real pip installing it into fresh venvs
// under each install scheme, with no package index, and the wheel-based Space folder from
// make space run the way a Space runs it, once as root and once as uid 1000 from a read-only
// folder. The package's own unit tests (python/tests) run here too.
//
// Run: go test -count=1 -run 'TestWheel|TestPythonUnit' ./e2e/

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	// wheelGitVersion is the VERSION the test wheel is built with: what its hfgate --version
	// prints (git describe form: 4 commits after v1.2.3).
	wheelGitVersion = "v1.2.3-4-gabcdef0"
	// wheelVersion is its PEP 440 form, the wheel's version.
	wheelVersion = "1.2.4.dev4+gabcdef0"
)

// wheelMachine is the wheel platform name of this machine's architecture.
var wheelMachine = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]

var wheelBuild struct {
	once sync.Once
	path string
	err  error
}

// builtWheel returns the wheel for this machine built by make wheel, building it once per test
// run (for this architecture only; the other one is built from a stand-in in TestWheelContents).
func builtWheel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("wheel: skipped with -short")
	}
	requirePython(t)
	if wheelMachine == "" {
		t.Skipf("wheel: no wheel for GOARCH %s", runtime.GOARCH)
	}
	wheelBuild.once.Do(func() {
		dist := filepath.Join(e2eBuild.dir, "wheel")
		cmd := exec.Command("make", "--no-print-directory", "wheel", "DIST="+dist,
			"WHEEL_ARCHES="+runtime.GOARCH, "VERSION="+wheelGitVersion)
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			wheelBuild.err = fmt.Errorf("make wheel: %w\n%s", err, out)
			return
		}
		found, _ := filepath.Glob(filepath.Join(dist, "hfgate-*.whl"))
		if len(found) != 1 {
			wheelBuild.err = fmt.Errorf("make wheel wrote %q, want one wheel\n%s", found, out)
			return
		}
		wheelBuild.path = found[0]
	})
	if wheelBuild.err != nil {
		t.Fatal(wheelBuild.err)
	}
	return wheelBuild.path
}

// TestWheelContents reads the wheel back: its name and tags, the binary's zip entry typed a
// regular file with mode 0755 (what pip needs to install it executable), no console script,
// METADATA, and a RECORD whose hashes and sizes match every file.
func TestWheelContents(t *testing.T) {
	w := builtWheel(t)
	if got, want := filepath.Base(w), fmt.Sprintf("hfgate-%s-py3-none-manylinux_2_17_%s.musllinux_1_2_%s.whl", wheelVersion, wheelMachine, wheelMachine); got != want {
		t.Errorf("wheel name: got %s, want %s", got, want)
	}
	z, err := zip.OpenReader(w)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	files := map[string][]byte{}
	modes := map[string]uint32{}
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name], modes[f.Name] = b, f.ExternalAttrs>>16
	}
	info, data := "hfgate-"+wheelVersion+".dist-info/", "hfgate-"+wheelVersion+".data/"
	script := data + "scripts/hfgate"
	pkg := []string{"hfgate/__init__.py", "hfgate/__main__.py", "hfgate/space.py", "hfgate/space_readme.md"}
	want := append(slices.Clone(pkg), script, info+"METADATA", info+"WHEEL", info+"RECORD")
	got := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("entries: got %q, want %q (in particular no entry_points.txt)", got, want)
	}
	if m := modes[script]; m != syscall.S_IFREG|0o755 {
		t.Errorf("%s: zip mode %o, want %o (S_IFREG|0755; pip sets +x only for a regular file)", script, m, syscall.S_IFREG|0o755)
	}
	for _, n := range pkg {
		if m := modes[n]; m != syscall.S_IFREG|0o644 {
			t.Errorf("%s: zip mode %o, want %o", n, m, syscall.S_IFREG|0o644)
		}
	}
	checkBinary(t, files[script], runtime.GOARCH)

	wheelMeta := string(files[info+"WHEEL"])
	for _, line := range []string{"Wheel-Version: 1.0", "Root-Is-Purelib: false",
		"Tag: py3-none-manylinux_2_17_" + wheelMachine, "Tag: py3-none-musllinux_1_2_" + wheelMachine} {
		if !strings.Contains("\n"+wheelMeta, "\n"+line+"\n") {
			t.Errorf("WHEEL lacks %q:\n%s", line, wheelMeta)
		}
	}
	head, body, _ := strings.Cut(string(files[info+"METADATA"]), "\n\n")
	for _, line := range []string{"Metadata-Version: 2.1", "Name: hfgate", "Version: " + wheelVersion,
		"Requires-Python: >=3.8", "Home-page: https://github.com/hfgate/hfgate", "Description-Content-Type: text/markdown"} {
		if !strings.Contains("\n"+head+"\n", "\n"+line+"\n") {
			t.Errorf("METADATA lacks %q:\n%s", line, head)
		}
	}
	for _, field := range []string{"Summary: ", "License: ", "Project-URL: "} {
		if !strings.Contains("\n"+head, "\n"+field) {
			t.Errorf("METADATA lacks a %s field:\n%s", field, head)
		}
	}
	if !strings.HasPrefix(body, "# hfgate\n") || !strings.Contains(body, "## Deploying to a Space") {
		t.Errorf("METADATA's long description is not the README: %.80q", body)
	}

	rows, err := csv.NewReader(bytes.NewReader(files[info+"RECORD"])).ReadAll()
	if err != nil {
		t.Fatalf("RECORD: %v", err)
	}
	recorded := map[string]bool{}
	for _, row := range rows {
		if len(row) != 3 {
			t.Fatalf("RECORD row %q: want 3 fields", row)
		}
		recorded[row[0]] = true
		if row[0] == info+"RECORD" {
			continue
		}
		sum := sha256.Sum256(files[row[0]])
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); row[1] != want || row[2] != fmt.Sprint(len(files[row[0]])) {
			t.Errorf("RECORD %s: got %s %s, want %s %d", row[0], row[1], row[2], want, len(files[row[0]]))
		}
	}
	for n := range files {
		if !recorded[n] {
			t.Errorf("RECORD does not list %s", n)
		}
	}

	// The other architecture, from an ELF header standing in for its binary; and a binary for
	// the wrong one refused.
	other, otherMachine := "arm64", elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		other, otherMachine = "amd64", elf.EM_X86_64
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "hfgate-stub")
	if err := os.WriteFile(stub, elfHeader(otherMachine), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(e2ePython, repoPath("python", "build_wheel.py"), "--binary", stub, "--arch", other, "--version", "v2.0.0", "--out", dir).CombinedOutput()
	m := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[other]
	if wantName := filepath.Join(dir, fmt.Sprintf("hfgate-2.0.0-py3-none-manylinux_2_17_%s.musllinux_1_2_%s.whl", m, m)); err != nil || strings.TrimSpace(string(out)) != wantName {
		t.Errorf("build_wheel --arch %s: got %q (%v), want %s", other, out, err, wantName)
	}
	cmd := exec.Command(e2ePython, repoPath("python", "build_wheel.py"), "--binary", stub, "--arch", runtime.GOARCH, "--version", "v2.0.0", "--out", dir)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not built for linux/"+runtime.GOARCH) {
		t.Errorf("build_wheel with a %s binary as %s: got %q (%v), want it refused", other, runtime.GOARCH, out, err)
	}
}

// checkBinary checks that b is a static linux executable for goarch.
func checkBinary(t *testing.T, b []byte, goarch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the wheel's binary: %v", err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if f.Machine != want {
		t.Errorf("the wheel's binary: machine %v, want %v", f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the wheel's binary has an ELF interpreter: want a static binary (CGO_ENABLED=0)")
		}
	}
}

// venv is a fresh virtual environment that sees Debian's packages (fastapi, uvicorn, pip).
type venv struct {
	t   *testing.T
	dir string
}

// newVenv creates a venv in dir with --system-site-packages, so that Debian's fastapi and
// uvicorn serve and Debian's pip installs into it (--without-pip: no copy of pip from
// ensurepip's bundled wheel is needed, nor would one be fresher).
func newVenv(t *testing.T, dir string) venv {
	t.Helper()
	if out, err := exec.Command(e2ePython, "-m", "venv", "--system-site-packages", "--without-pip", dir).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("wheel: python3 -m venv: %v %s (apt-get install python3-venv)", err, out))
	}
	return venv{t: t, dir: dir}
}

func (v venv) python() string { return filepath.Join(v.dir, "bin", "python") }

// run runs the venv's python with args in a scratch folder, env added to a minimal
// environment, and returns its combined output; it fails the test unless the exit status is 0.
func (v venv) run(env []string, args ...string) string {
	v.t.Helper()
	out, err := v.try(env, args...)
	if err != nil {
		v.t.Fatalf("%s %q: %v\n%s", v.python(), args, err, out)
	}
	return out
}

func (v venv) try(env []string, args ...string) (string, error) {
	cmd := exec.Command(v.python(), args...)
	cmd.Dir = v.t.TempDir()
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + cmd.Dir, "PYTHONDONTWRITEBYTECODE=1"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pip runs the venv's pip, offline and quiet.
func (v venv) pip(env []string, args ...string) string {
	v.t.Helper()
	return v.run(append(env, "PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", "PIP_NO_INPUT=1"),
		append([]string{"-m", "pip"}, args...)...)
}

const findBin = "import hfgate; print(hfgate.find_hfgate_bin())"

// checkInstalled checks that the binary pip installed at bin is a regular file executable by
// all (no chmod has run: nothing but pip touched it), that find_hfgate_bin() returns it under
// env, and that both it and python -m hfgate print the wheel's version.
func checkInstalled(t *testing.T, v venv, env []string, bin string) {
	t.Helper()
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("installed binary: %v", err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: mode %v, want -rwxr-xr-x as pip installed it", bin, st.Mode())
	}
	if got := strings.TrimSpace(v.run(env, "-c", findBin)); got != bin {
		t.Errorf("find_hfgate_bin(): got %s, want %s", got, bin)
	}
	wantVersion := "hfgate " + wheelGitVersion + " (commit "
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), wantVersion) {
		t.Errorf("%s --version: got %q (%v), want %s...", bin, out, err, wantVersion)
	}
	if out := v.run(env, "-m", "hfgate", "--version"); !strings.HasPrefix(out, wantVersion) {
		t.Errorf("python -m hfgate --version: got %q, want %s...", out, wantVersion)
	}
}

// TestWheelInstall installs the wheel with pip (no index) into a fresh venv, then with --user,
// --target and --prefix, and checks each binary and find_hfgate_bin(). The subtests share the
// venv, so they run in order.
func TestWheelInstall(t *testing.T) {
	w := builtWheel(t)
	v := newVenv(t, filepath.Join(t.TempDir(), "venv"))
	venvBin := filepath.Join(v.dir, "bin", "hfgate")

	t.Run("venv", func(t *testing.T) {
		v.pip(nil, "install", w)
		checkInstalled(t, v, nil, venvBin)
		if got := strings.TrimSpace(v.run(nil, "-c", "import importlib.metadata as m; print(m.version('hfgate'))")); got != wheelVersion {
			t.Errorf("installed version: got %s, want %s", got, wheelVersion)
		}
		// With the wheel installed, and no Go: python -m hfgate.space new asks for this version.
		out := filepath.Join(t.TempDir(), "space")
		v.run(nil, "-m", "hfgate.space", "new", "--backend", repoPath("examples", "chatbot"), "--app", "app:app", "--out", out)
		if reqs := mustReadFile(t, filepath.Join(out, "requirements.txt")); !strings.Contains(reqs, "\nhfgate=="+wheelVersion+"\n") {
			t.Errorf("requirements.txt from the installed package: got %q, want a line hfgate==%s", reqs, wheelVersion)
		}
		v.pip(nil, "uninstall", "--yes", "hfgate")
		if _, err := os.Lstat(venvBin); !os.IsNotExist(err) {
			t.Errorf("after pip uninstall: %s still there (%v)", venvBin, err)
		}
		if out, err := v.try(nil, "-c", "import hfgate"); err == nil {
			t.Errorf("after pip uninstall: import hfgate still works: %s", out)
		}
	})

	t.Run("user", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "userbase")
		env := []string{"PYTHONUSERBASE=" + base}
		v.pip(env, "install", "--user", w)
		if _, err := os.Lstat(venvBin); !os.IsNotExist(err) {
			t.Errorf("--user install wrote %s (%v), want only the user base", venvBin, err)
		}
		checkInstalled(t, v, env, filepath.Join(base, "bin", "hfgate"))
		v.pip(env, "uninstall", "--yes", "hfgate")
	})

	t.Run("target", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "target")
		v.pip(nil, "install", "--target", target, w)
		checkInstalled(t, v, []string{"PYTHONPATH=" + target}, filepath.Join(target, "bin", "hfgate"))
	})

	t.Run("prefix", func(t *testing.T) {
		prefix := filepath.Join(t.TempDir(), "prefix")
		v.pip(nil, "install", "--prefix", prefix, w)
		site, _ := filepath.Glob(filepath.Join(prefix, "lib", "python3*", "site-packages"))
		if len(site) != 1 {
			t.Fatalf("--prefix install: site-packages %q, want one", site)
		}
		checkInstalled(t, v, []string{"PYTHONPATH=" + site[0]}, filepath.Join(prefix, "bin", "hfgate"))
	})
}

// TestWheelSpaceRunThrough writes the Space folder with make space, its requirement pointing at
// the built wheel, installs it as HF's build does (pip install -r requirements.txt, here with no
// index) and runs python app.py as the Space's runtime does: as root from the folder, and as
// uid 1000 with HOME=/home/user-like and the app in an /app-like folder it cannot write, the
// installation root's (as in the 2026 images, where pip runs as root into /usr/local).
func TestWheelSpaceRunThrough(t *testing.T) {
	requireBackend(t)
	w := builtWheel(t)
	req := "hfgate @ file://" + w
	dir := assembleSpace(t, "HFGATE_REQUIREMENT="+req)
	checkSpaceFolder(t, dir, false)
	if reqs := mustReadFile(t, filepath.Join(dir, "requirements.txt")); !strings.Contains(reqs, "\n"+req+"\n") {
		t.Errorf("requirements.txt lacks %q:\n%s", req, reqs)
	}
	install := func(t *testing.T, venvDir string) venv {
		t.Helper()
		v := newVenv(t, venvDir)
		// --no-deps: Debian 12's python3-fastapi 0.92 declares starlette<0.26 but Debian ships
		// a patched starlette 0.26.1, so pip's resolver refuses the set when it may not fetch
		// another. Each line of requirements.txt must still be met (the backend's by Debian's
		// packages, hfgate by the wheel, which has no dependencies of its own).
		v.pip(nil, "install", "--no-deps", "--requirement", filepath.Join(dir, "requirements.txt"))
		return v
	}

	t.Run("root", func(t *testing.T) {
		v := install(t, filepath.Join(t.TempDir(), "venv"))
		runSpace(t, spaceRun{dir: dir, python: v.python(), exe: filepath.Join(v.dir, "bin", "hfgate"), version: wheelGitVersion})
	})

	t.Run("uid 1000, read-only app", func(t *testing.T) {
		if os.Geteuid() != 0 {
			skipOrFail(t, "wheel: running the Space as uid 1000 needs root")
		}
		// A root the other user can walk: t.TempDir's parent is private to this uid.
		root, err := os.MkdirTemp("", "hfgate-space-uid1000-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		home := filepath.Join(root, "home", "user")
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{root, filepath.Dir(home)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(home, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		v := install(t, filepath.Join(root, "venv"))
		app := filepath.Join(root, "app")
		copyTree(t, dir, app)
		// Read-only for everyone; owned by root, so uid 1000 cannot change that either.
		err = filepath.WalkDir(app, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.Chmod(path, 0o555)
			}
			return os.Chmod(path, 0o444)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = filepath.WalkDir(app, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Chmod(path, 0o755)
				}
				return nil
			})
		})
		runSpace(t, spaceRun{dir: app, python: v.python(), exe: filepath.Join(v.dir, "bin", "hfgate"),
			version: wheelGitVersion, uid: 1000, home: home})
	})
}

// TestPythonUnit runs the hfgate package's unit tests (python/tests: the version mapping, the
// requirements merge, the launcher's environment, find_hfgate_bin's order).
func TestPythonUnit(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cmd := exec.Command(e2ePython, "-m", "unittest", "discover", "-s", repoPath("python", "tests"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python -m unittest: %v\n%s", err, out)
	}
	// Python before 3.12 says OK and exits 0 when discovery finds nothing.
	if m := regexp.MustCompile(`(?m)^Ran (\d+) tests? `).FindSubmatch(out); m == nil || string(m[1]) == "0" {
		t.Fatalf("python -m unittest ran no tests:\n%s", out)
	}
}
