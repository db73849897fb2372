package e2e

// The documentation against what hfgate does today: no version of hfgate typed into the guides
// (the version a Space asks for is the one `new` writes, derived from the hfgate that writes
// it), and the README's sample console lines shaped as the real binary prints them.
//
// Run: go test -count=1 -run 'TestDocs' ./e2e/

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docFiles returns the Markdown a user reads: README.md, docs/, examples/ and the Space card
// template, as paths from the module root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", filepath.Join("python", "hfgate", "space_readme.md")}
	for _, dir := range []string{"docs", "examples"} {
		err := filepath.WalkDir(repoPath(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".md") {
				rel, _ := filepath.Rel(moduleRoot, path)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// typedVersion matches a version of hfgate written out where a reader would copy it: a pinned
// requirement, a wheel's file name, a release's download path.
var typedVersion = regexp.MustCompile(`hfgate\s*===?\s*[0-9]|hfgate-[0-9][^ ]*\.whl|releases/download/v[0-9]`)

// TestDocsNoTypedVersion: the guides name hfgate's version as <version>. A number typed there
// goes stale with the next release, and before the first it names a package no index has (as
// "hfgate==1.2.0" did, ten times). The version a Space asks for is derived by `new` from the
// hfgate that writes the folder, and it warns when no index serves it.
func TestDocsNoTypedVersion(t *testing.T) {
	t.Parallel()
	for _, name := range docFiles(t) {
		b, err := os.ReadFile(repoPath(name))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := typedVersion.FindString(line); m != "" {
				t.Errorf("%s:%d: %q types a version of hfgate; write <version> (new derives it):\n%s", name, i+1, m, line)
			}
		}
	}
}

// TestDocsREADMEConsoleSample: each line of the README's sample console output ("What make run
// shows") is one the real binary prints in the same run: the same level and message, the same
// attributes (values differ: times, ports, IDs), and for the backend's relayed lines the same
// text but for digits.
func TestDocsREADMEConsoleSample(t *testing.T) {
	t.Parallel()
	readme := mustReadFile(t, repoPath("README.md"))
	_, after, ok := strings.Cut(readme, "\n## What `make run` shows\n")
	if !ok {
		t.Fatal("README.md: no \"What `make run` shows\" section")
	}
	_, after, ok = strings.Cut(after, "\n```text\n")
	if !ok {
		t.Fatal("README.md: no ```text block of console output in \"What `make run` shows\"")
	}
	block, _, _ := strings.Cut(after, "```\n")
	var sample []logLine
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		sample = append(sample, logLine{raw: l})
	}
	if len(sample) < 5 {
		t.Fatalf("README.md: only %d sample lines", len(sample))
	}

	// The README's run, on the test's ports: a cold POST /chat, then, once ready, another.
	ctx := testContext(t, 60*time.Second)
	g := startGateway(t, nil)
	g.awaitPort(ctx)
	checkNotReady(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message":"hello"}`), "starting")
	g.awaitReady(ctx, 50*time.Millisecond)
	checkChat(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message":"hello"}`), botReply("hello"))
	g.awaitLog(ctx, 1, "the ready POST /chat", accessLine(http.MethodPost, "/chat", http.StatusOK))
	if code := g.stop(ctx); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	real, _ := g.logs.snapshot()

	digits := regexp.MustCompile(`[0-9]+`)
	shape := func(l logLine) string {
		f := strings.Fields(l.raw)
		level := ""
		if len(f) > 1 {
			level = f[1]
		}
		msg, attrs := l.fields()
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range attrs {
				if !yield(k) {
					return
				}
			}
		})
		s := level + " " + msg + " " + strings.Join(keys, ",")
		if l.relayed() {
			s += " " + digits.ReplaceAllString(strings.TrimSpace(attrs["line"]), "N")
		}
		return s
	}
	have := map[string]bool{}
	for _, l := range real {
		have[shape(l)] = true
	}
	for _, l := range sample {
		if !have[shape(l)] {
			t.Errorf("README.md's sample line is not one hfgate prints today (level, message, attributes: %s):\n%s", shape(l), l.raw)
		}
	}
}
