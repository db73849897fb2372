package e2e

// hfgate's release (make release, python/build_wheel.py): every wheel and binary it writes, read
// back (a wheel per platform, Linux and macOS, amd64 and arm64, each with its binary, and the
// py3-none-any wheel with none), SHA256SUMS, and which wheel pip picks for each platform; the
// wheel for this machine installed by real pip into fresh venvs under each install scheme, with
// no package index, and the wheel-based Space folder from make space run the way a Space runs
// it, once as root and once as uid 1000 from a read-only folder; the py3-none-any wheel
// installed and run. The package's own unit tests (python/tests) run here too.
//
// Run: go test -count=1 -run 'TestWheel|TestRelease|TestPythonUnit' ./e2e/

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
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
	// wheelGitVersion is the VERSION the test release is built with: what its hfgate --version
	// prints (git describe form: 4 commits after v1.2.3).
	wheelGitVersion = "v1.2.3-4-gabcdef0"
	// wheelVersion is its PEP 440 form, the wheels' version.
	wheelVersion = "1.2.4.dev4+gabcdef0"
)

// wheelMachine is the wheel platform name of this machine's architecture.
var wheelMachine = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]

// releaseTarget is one platform make release builds for.
type releaseTarget struct {
	goos, goarch string
	tag          string // the wheel's platform tag (compressed tag set)
}

// releaseTargets are the platforms of a release, with the tags their wheels must carry: Linux
// for glibc and musl at once (a CGO_ENABLED=0 binary needs no libc), macOS from 12.0, the
// oldest macOS Go 1.26 binaries run on (read from the binary's LC_BUILD_VERSION).
var releaseTargets = []releaseTarget{
	{"linux", "amd64", "manylinux_2_17_x86_64.musllinux_1_2_x86_64"},
	{"linux", "arm64", "manylinux_2_17_aarch64.musllinux_1_2_aarch64"},
	{"darwin", "amd64", "macosx_12_0_x86_64"},
	{"darwin", "arm64", "macosx_12_0_arm64"},
}

func (rt releaseTarget) binaryName() string { return "hfgate-" + rt.goos + "-" + rt.goarch }
func (rt releaseTarget) wheelName() string {
	return fmt.Sprintf("hfgate-%s-py3-none-%s.whl", wheelVersion, rt.tag)
}

// anyWheelName is the wheel with no binary.
const anyWheelName = "hfgate-" + wheelVersion + "-py3-none-any.whl"

var releaseBuild struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// builtRelease returns the folder make release wrote (RELEASE_DIR), building it once per test
// run: four cross-compiled binaries, five wheels and SHA256SUMS.
func builtRelease(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("wheel: skipped with -short")
	}
	requirePython(t)
	releaseBuild.once.Do(func() {
		dir := filepath.Join(e2eBuild.dir, "release")
		cmd := exec.Command("make", "--no-print-directory", "release", "RELEASE_DIR="+dir, "VERSION="+wheelGitVersion)
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			releaseBuild.err = fmt.Errorf("make release: %w\n%s", err, out)
			return
		}
		releaseBuild.dir, releaseBuild.out = dir, out
	})
	if releaseBuild.err != nil {
		t.Fatal(releaseBuild.err)
	}
	return releaseBuild.dir
}

// builtWheel returns the release's wheel for this machine.
func builtWheel(t *testing.T) string {
	t.Helper()
	if wheelMachine == "" {
		t.Skipf("wheel: no wheel for GOARCH %s", runtime.GOARCH)
	}
	dir := builtRelease(t)
	for _, rt := range releaseTargets {
		if rt.goos == "linux" && rt.goarch == runtime.GOARCH {
			return filepath.Join(dir, rt.wheelName())
		}
	}
	t.Fatalf("no release target for linux/%s", runtime.GOARCH)
	return ""
}

// readWheel returns a wheel's files and their zip modes (external attributes >> 16).
func readWheel(t *testing.T, path string) (files map[string][]byte, modes map[string]uint32) {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	files, modes = map[string][]byte{}, map[string]uint32{}
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
	return files, modes
}

// TestReleaseFiles checks that make release wrote exactly what the release workflow uploads (a
// binary and a wheel per platform, the py3-none-any wheel, SHA256SUMS, nothing else), that
// SHA256SUMS is right for every other file, and that each binary is the one its wheel carries.
func TestReleaseFiles(t *testing.T) {
	dir := builtRelease(t)
	want := []string{"SHA256SUMS", anyWheelName}
	for _, rt := range releaseTargets {
		want = append(want, rt.binaryName(), rt.wheelName())
	}
	slices.Sort(want)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("release files:\n got %q\nwant %q", got, want)
	}

	sums := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(mustReadFile(t, filepath.Join(dir, "SHA256SUMS"))))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q: want \"<sha256>  <name>\"", sc.Text())
		}
		sums[name] = sum
	}
	for _, name := range want {
		if name == "SHA256SUMS" {
			if _, ok := sums[name]; ok {
				t.Errorf("SHA256SUMS lists itself")
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		if sums[name] != hex.EncodeToString(h[:]) {
			t.Errorf("SHA256SUMS %s: got %q, want %x", name, sums[name], h)
		}
	}
	if len(sums) != len(want)-1 {
		t.Errorf("SHA256SUMS has %d lines, want %d: %q", len(sums), len(want)-1, sums)
	}

	for _, rt := range releaseTargets {
		bin, err := os.ReadFile(filepath.Join(dir, rt.binaryName()))
		if err != nil {
			t.Fatal(err)
		}
		files, _ := readWheel(t, filepath.Join(dir, rt.wheelName()))
		if !bytes.Equal(files["hfgate-"+wheelVersion+".data/scripts/hfgate"], bin) {
			t.Errorf("%s: its binary is not %s", rt.wheelName(), rt.binaryName())
		}
		if st, err := os.Stat(filepath.Join(dir, rt.binaryName())); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v (%v), want 0755", rt.binaryName(), st.Mode(), err)
		}
	}
}

// TestWheelContents reads every wheel of the release back: its tags, the package, the binary's
// zip entry typed a regular file with mode 0755 (what pip needs to install it executable) and
// built for the wheel's platform, no console script, the license, one METADATA for all, and a
// RECORD whose hashes and sizes match every file.
func TestWheelContents(t *testing.T) {
	dir := builtRelease(t)
	license := mustReadFile(t, repoPath("LICENSE"))
	var firstMeta string
	check := func(t *testing.T, name string, rt *releaseTarget) {
		files, modes := readWheel(t, filepath.Join(dir, name))
		info, data := "hfgate-"+wheelVersion+".dist-info/", "hfgate-"+wheelVersion+".data/"
		script := data + "scripts/hfgate"
		pkg := []string{"hfgate/__init__.py", "hfgate/__main__.py", "hfgate/appcheck.py", "hfgate/platforms.py", "hfgate/space.py",
			"hfgate/space_readme.md", "hfgate/zerogpu.py"}
		want := append(slices.Clone(pkg), info+"METADATA", info+"WHEEL", info+"RECORD", info+"LICENSE")
		if rt != nil {
			want = append(want, script)
		}
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
		for _, n := range append(pkg, info+"LICENSE") {
			if m := modes[n]; m != syscall.S_IFREG|0o644 {
				t.Errorf("%s: zip mode %o, want %o", n, m, syscall.S_IFREG|0o644)
			}
		}
		if got := string(files[info+"LICENSE"]); got != license {
			t.Errorf("%sLICENSE is not the repository's LICENSE", info)
		}
		wheelMeta := string(files[info+"WHEEL"])
		lines := []string{"Wheel-Version: 1.0", "Root-Is-Purelib: true", "Tag: py3-none-any"}
		if rt != nil {
			if m := modes[script]; m != syscall.S_IFREG|0o755 {
				t.Errorf("%s: zip mode %o, want %o (S_IFREG|0755; pip sets +x only for a regular file)", script, m, syscall.S_IFREG|0o755)
			}
			checkReleaseBinary(t, files[script], *rt)
			lines = []string{"Wheel-Version: 1.0", "Root-Is-Purelib: false"}
			for _, tag := range strings.Split(rt.tag, ".") {
				lines = append(lines, "Tag: py3-none-"+tag)
			}
		}
		if n := strings.Count(wheelMeta, "Tag: "); n != len(lines)-2 {
			t.Errorf("WHEEL has %d tags, want %d:\n%s", n, len(lines)-2, wheelMeta)
		}
		for _, line := range lines {
			if !strings.Contains("\n"+wheelMeta, "\n"+line+"\n") {
				t.Errorf("WHEEL lacks %q:\n%s", line, wheelMeta)
			}
		}

		meta := string(files[info+"METADATA"])
		head, body, _ := strings.Cut(meta, "\n\n")
		for _, line := range []string{"Metadata-Version: 2.1", "Name: hfgate", "Version: " + wheelVersion,
			"Requires-Python: >=3.8", "Home-page: https://github.com/hfgate/hfgate", "Description-Content-Type: text/markdown",
			"License: Apache-2.0", "Classifier: License :: OSI Approved :: Apache Software License",
			"Classifier: Operating System :: MacOS", "Classifier: Operating System :: POSIX :: Linux"} {
			if !strings.Contains("\n"+head+"\n", "\n"+line+"\n") {
				t.Errorf("METADATA lacks %q:\n%s", line, head)
			}
		}
		for _, field := range []string{"Summary: ", "Project-URL: "} {
			if !strings.Contains("\n"+head, "\n"+field) {
				t.Errorf("METADATA lacks a %s field:\n%s", field, head)
			}
		}
		if !strings.HasPrefix(body, "# hfgate\n") || !strings.Contains(body, "## Quickstart: your FastAPI app on a Space") {
			t.Errorf("METADATA's long description is not the README: %.80q", body)
		}
		// PyPI shows one release's metadata: every file must agree.
		if firstMeta == "" {
			firstMeta = meta
		} else if meta != firstMeta {
			t.Errorf("METADATA differs from the other wheels'")
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
	}
	for _, rt := range releaseTargets {
		t.Run(rt.goos+"/"+rt.goarch, func(t *testing.T) { check(t, rt.wheelName(), &rt) })
	}
	t.Run("any", func(t *testing.T) { check(t, anyWheelName, nil) })
}

// checkReleaseBinary checks that b is a hfgate binary for rt: a static ELF executable for its
// machine on Linux; on macOS a 64-bit Mach-O executable for its CPU, for macOS 12.0 (the tag),
// signed (macOS on arm64 kills an unsigned binary), linking only the system's own libraries.
func checkReleaseBinary(t *testing.T, b []byte, rt releaseTarget) {
	t.Helper()
	if rt.goos == "linux" {
		checkBinary(t, b, rt.goarch)
		return
	}
	f, err := macho.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the wheel's binary: %v", err)
	}
	want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[rt.goarch]
	if f.Magic != macho.Magic64 || f.Cpu != want || f.Type != macho.TypeExec {
		t.Errorf("the wheel's binary: magic %#x cpu %v type %v, want %#x %v %v", f.Magic, f.Cpu, f.Type, macho.Magic64, want, macho.TypeExec)
	}
	const lcBuildVersion, lcCodeSignature, platformMacOS = 0x32, 0x1d, 1
	var minos uint32
	signed := false
	for _, l := range f.Loads {
		raw := l.Raw()
		switch f.ByteOrder.Uint32(raw) {
		case lcBuildVersion:
			if p := binary.LittleEndian.Uint32(raw[8:]); p != platformMacOS {
				t.Errorf("LC_BUILD_VERSION platform %d, want %d (macOS)", p, platformMacOS)
			}
			minos = binary.LittleEndian.Uint32(raw[12:])
		case lcCodeSignature:
			signed = true
		}
	}
	if got := fmt.Sprintf("macosx_%d_%d_", minos>>16, (minos>>8)&0xff); !strings.HasPrefix(rt.tag, got) {
		t.Errorf("the binary's minimum macOS is %d.%d; the tag %s says otherwise", minos>>16, (minos>>8)&0xff, rt.tag)
	}
	// Go's linker signs darwin/arm64 binaries ad hoc; macOS on arm64 kills one without a
	// signature (amd64 needs none, and Go signs none).
	if rt.goarch == "arm64" && !signed {
		t.Errorf("the wheel's %s binary has no LC_CODE_SIGNATURE", rt.goarch)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		if !strings.HasPrefix(lib, "/usr/lib/") && !strings.HasPrefix(lib, "/System/Library/") {
			t.Errorf("the wheel's binary links %s, which is not part of macOS", lib)
		}
	}
}

// TestWheelPipChoice asks real pip which of the release's wheels it takes for each kind of
// machine (pip download --platform, no index): the binary wheel where there is one, the
// py3-none-any wheel on a Mac older than the binary's macOS 12 and on other systems. (pip
// expands a given macosx tag to the older macOS versions, as it does on a Mac, but takes a
// manylinux tag as it is: this machine's own choice is TestWheelInstall's find-links.)
func TestWheelPipChoice(t *testing.T) {
	dir := builtRelease(t)
	tests := []struct{ platform, want string }{
		{"manylinux_2_17_x86_64", releaseTargets[0].wheelName()},
		{"musllinux_1_2_x86_64", releaseTargets[0].wheelName()},
		{"manylinux_2_17_aarch64", releaseTargets[1].wheelName()},
		{"macosx_12_0_x86_64", releaseTargets[2].wheelName()},
		{"macosx_15_0_arm64", releaseTargets[3].wheelName()},
		{"macosx_11_0_arm64", anyWheelName},
		{"win_amd64", anyWheelName},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			cmd := exec.Command(e2ePython, "-m", "pip", "download", "--quiet", "--no-index", "--find-links", dir,
				"--only-binary=:all:", "--platform", tt.platform, "--dest", out, "hfgate")
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + out, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1"}
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pip download: %v\n%s", err, b)
			}
			got, _ := filepath.Glob(filepath.Join(out, "*.whl"))
			if len(got) != 1 || filepath.Base(got[0]) != tt.want {
				t.Errorf("pip took %q, want %s", got, tt.want)
			}
		})
	}
}

// TestWheelBuildRefuses: build_wheel.py refuses a binary that is not what --os/--arch say.
func TestWheelBuildRefuses(t *testing.T) {
	dir := builtRelease(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	tests := []struct{ binary, goos, goarch, want string }{
		{"hfgate-linux-" + other, "linux", runtime.GOARCH, "is not built for linux/" + runtime.GOARCH},
		{"hfgate-darwin-arm64", "linux", "arm64", "is not built for linux/arm64 (it is built for darwin/arm64)"},
		{"hfgate-linux-amd64", "darwin", "amd64", "is not built for darwin/amd64 (it is built for linux/amd64)"},
		{"SHA256SUMS", "linux", "amd64", "is not a Linux or macOS executable"},
	}
	for _, tt := range tests {
		cmd := exec.Command(e2ePython, repoPath("python", "build_wheel.py"), "--binary", filepath.Join(dir, tt.binary),
			"--os", tt.goos, "--arch", tt.goarch, "--version", "v2.0.0", "--out", t.TempDir())
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("build_wheel %s as %s/%s: got %q (%v), want it refused: %q", tt.binary, tt.goos, tt.goarch, out, err, tt.want)
		}
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
		// With the wheel installed, and no Go: python -m hfgate.space new asks for this version,
		// a development build no index serves, and says so once.
		out := filepath.Join(t.TempDir(), "space")
		output := v.run(nil, "-m", "hfgate.space", "new", "--backend", repoPath("examples", "chatbot"), "--app", "app:app", "--out", out)
		reqsFile := filepath.Join(out, "requirements.txt")
		if reqs := mustReadFile(t, reqsFile); !strings.Contains(reqs, "\nhfgate=="+wheelVersion+"\n") {
			t.Errorf("requirements.txt from the installed package: got %q, want a line hfgate==%s", reqs, wheelVersion)
		}
		if w := warningLines(output); len(w) != 1 || !strings.Contains(w[0], "hfgate=="+wheelVersion+", a development build") {
			t.Errorf("new with a development version: got warnings %q, want one naming hfgate==%s; output:\n%s", w, wheelVersion, output)
		}
		// Trying the folder locally, as the guide says: with the wheel installed first, the
		// requirement no index serves is met (--no-index: nothing is fetched).
		v.pip(nil, "install", "--no-deps", "--requirement", reqsFile)
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

	// As from an index holding every wheel of the release: pip takes this platform's.
	t.Run("find-links", func(t *testing.T) {
		v.pip(nil, "install", "--find-links", filepath.Dir(w), "hfgate=="+wheelVersion)
		checkInstalled(t, v, nil, venvBin)
		v.pip(nil, "uninstall", "--yes", "hfgate")
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

// TestWheelAny installs the py3-none-any wheel (no index) into a fresh venv: python -m
// hfgate.space new writes a Space folder as on any platform, and running the gateway, by python -m
// hfgate or by the folder's app.py, says in one line that this install has no binary and what to
// do, and exits 1.
func TestWheelAny(t *testing.T) {
	dir := builtRelease(t)
	v := newVenv(t, filepath.Join(t.TempDir(), "venv"))
	v.pip(nil, "install", filepath.Join(dir, anyWheelName))
	if _, err := os.Lstat(filepath.Join(v.dir, "bin", "hfgate")); !os.IsNotExist(err) {
		t.Errorf("the any wheel installed a bin/hfgate (%v)", err)
	}
	space := filepath.Join(t.TempDir(), "space")
	v.run(nil, "-m", "hfgate.space", "new", "--backend", repoPath("examples", "chatbot"), "--app", "app:app", "--out", space)
	if reqs := mustReadFile(t, filepath.Join(space, "requirements.txt")); !strings.Contains(reqs, "\nhfgate=="+wheelVersion+"\n") {
		t.Errorf("requirements.txt from the any wheel: got %q, want a line hfgate==%s", reqs, wheelVersion)
	}
	for _, run := range []struct {
		name, prefix string
		args         []string
	}{
		{"python -m hfgate", "python -m hfgate: ", []string{"-m", "hfgate", "--version"}},
		{"python app.py", "app.py: ", []string{"app.py"}},
	} {
		t.Run(run.name, func(t *testing.T) {
			cmd := exec.Command(v.python(), run.args...)
			cmd.Dir = space
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "PYTHONDONTWRITEBYTECODE=1"}
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatal(err)
			}
			want := run.prefix + "this hfgate install is the py3-none-any wheel, which has no hfgate binary"
			if code := cmd.ProcessState.ExitCode(); code != 1 || strings.Count(string(out), "\n") != 1 ||
				!strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "pip install --force-reinstall hfgate=="+wheelVersion) {
				t.Errorf("got exit %d and %q, want exit 1 and one line starting %q and saying how to reinstall", code, out, want)
			}
		})
	}
}

// TestWheelSpaceRunThrough writes the Space folder with make space, its requirement pointing at
// the built wheel, installs it as HF's build does (pip install -r requirements.txt, here with no
// index) and runs python app.py as the Space's runtime does: as root from the folder, and as
// uid 1000 with HOME=/home/user-like and the app in an /app-like folder it cannot write, the
// installation root's (as in the 2026 images, where pip runs as root into /usr/local).
func TestWheelSpaceRunThrough(t *testing.T) {
	requireBackend(t)
	wheel := builtWheel(t)
	req := "hfgate @ file://" + wheel
	dir, output := assembleSpaceOutput(t, "HFGATE_REQUIREMENT="+req)
	checkSpaceFolder(t, dir, false)
	// Fine to try here, useless on a Space: said once.
	if w := warningLines(output); len(w) != 1 || !strings.Contains(w[0], "a file on this machine (file://"+wheel+")") {
		t.Errorf("make space with a file:// requirement: got warnings %q, want one naming the file; output:\n%s", w, output)
	}
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

// TestReleaseNotes: make release-notes prints CHANGELOG's section for a tag's version (what the
// release workflow publishes as the release's notes) and fails for a version with no section.
func TestReleaseNotes(t *testing.T) {
	t.Parallel()
	requirePython(t)
	changelog := filepath.Join(t.TempDir(), "CHANGELOG.md")
	text := "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.3.0rc1] - 2026-12-07\n\n- a candidate\n\n" +
		"## [1.2.3] - 2026-12-06\n\n### Added\n\n- the first\n\n[1.2.3]: https://github.com/hfgate/hfgate/releases/tag/v1.2.3\n"
	if err := os.WriteFile(changelog, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := func(version string) (string, error) {
		cmd := exec.Command("make", "--no-print-directory", "release-notes", "VERSION="+version, "CHANGELOG="+changelog)
		cmd.Dir = moduleRoot
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String() + stderr.String(), err
	}
	for version, want := range map[string]string{
		"v1.2.3":      "\n### Added\n\n- the first\n\n",
		"v1.3.0-rc.1": "\n- a candidate\n\n",
	} {
		if got, err := notes(version); err != nil || got != want {
			t.Errorf("release-notes %s: got %q (%v), want %q", version, got, err, want)
		}
	}
	if got, err := notes("v1.2.4"); err == nil || !strings.Contains(got, `has no "## [1.2.4]" section`) {
		t.Errorf("release-notes v1.2.4: got %q (%v), want it refused for want of a section", got, err)
	}
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
