package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the variable table in ../docs/configuration.md from Vars()")

const docsPath = "../docs/configuration.md"

func TestVars(t *testing.T) {
	t.Parallel()
	vars := Vars()
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
		if strings.TrimSpace(v.Meaning) == "" {
			t.Errorf("%s: empty meaning (add a help tag)", v.Name)
		}
		if strings.ContainsAny(v.Meaning, "|\n") || strings.ContainsAny(v.Default, "|`\n") {
			t.Errorf("%s: meaning or default holds a character that breaks the docs table", v.Name)
		}
	}
	wantNames := []string{
		"PORT", "GRADIO_SERVER_PORT", "HOST", "GRADIO_SERVER_NAME", "SPACE_HOST", "SPACE_ID",
		"UPSTREAM_URL", "UPSTREAM_HEALTH_PATH", "UPSTREAM_TIMEOUT", "UPSTREAM_CMD", "UPSTREAM_DIR", "UPSTREAM_STOP_TIMEOUT",
		"UPSTREAM_MAX_BACKOFF", "REQUIRED_ENV", "CORS_ALLOW_ORIGINS", "CORS_ALLOW_CREDENTIALS", "CORS_ALLOW_HEADERS", "CORS_MAX_AGE",
		"TRUSTED_PROXIES", "MAX_BODY_BYTES", "BUFFER_BODY_BYTES", "BODY_READ_TIMEOUT", "HOLD_TIMEOUT", "HOLD_MAX", "UPSTREAM_CONCURRENCY",
		"LOG_LEVEL", "LOG_FORMAT", "LOG_CLIENT_ADDR", "SHUTDOWN_TIMEOUT", "METRICS_ADDR",
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("Vars names: got %q, want %q", names, wantNames)
	}
	want := map[string]string{
		"PORT": "7860", "GRADIO_SERVER_PORT": "", "HOST": "0.0.0.0", "GRADIO_SERVER_NAME": "",
		"UPSTREAM_URL": "http://127.0.0.1:8000", "UPSTREAM_HEALTH_PATH": "/health", "UPSTREAM_TIMEOUT": "55s",
		"UPSTREAM_CMD": "", "UPSTREAM_DIR": "", "UPSTREAM_STOP_TIMEOUT": "5s", "UPSTREAM_MAX_BACKOFF": "30s", "REQUIRED_ENV": "",
		"CORS_ALLOW_ORIGINS": "", "CORS_ALLOW_CREDENTIALS": "false",
		"CORS_ALLOW_HEADERS": "Accept,Authorization,Content-Type,Last-Event-ID,X-Request-ID",
		"CORS_MAX_AGE":       "600",
		"TRUSTED_PROXIES":    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7",
		"MAX_BODY_BYTES":     "10MiB", "BUFFER_BODY_BYTES": "64KiB", "BODY_READ_TIMEOUT": "30s",
		"HOLD_TIMEOUT": "10s", "HOLD_MAX": "256", "UPSTREAM_CONCURRENCY": "auto", "LOG_LEVEL": "info", "LOG_FORMAT": "text", "LOG_CLIENT_ADDR": "true", "SHUTDOWN_TIMEOUT": "10s",
	}
	for _, v := range vars {
		if v.Default != want[v.Name] {
			t.Errorf("%s default: got %q, want %q", v.Name, v.Default, want[v.Name])
		}
	}
}

// TestConfigFieldsTagged keeps every variable declared in one place: a
// field is either an env variable with a default and a meaning, or one of
// the few derived fields.
func TestConfigFieldsTagged(t *testing.T) {
	t.Parallel()
	derived := []string{"PortSource", "HostSource", "Missing", "Secrets", "Warnings"}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		_, hasEnv := f.Tag.Lookup("env")
		if slices.Contains(derived, f.Name) {
			if hasEnv {
				t.Errorf("%s: derived field has an env tag", f.Name)
			}
			continue
		}
		if !hasEnv {
			t.Errorf("%s: no env tag", f.Name)
		}
		if _, ok := f.Tag.Lookup("envDefault"); !ok {
			t.Errorf("%s: no envDefault tag", f.Name)
		}
		if f.Tag.Get("help") == "" {
			t.Errorf("%s: no help tag", f.Name)
		}
	}
}

func TestWriteHelp(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteHelp(&buf); err != nil {
		t.Fatalf("WriteHelp: got error %v", err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, helpHeader+"\n") {
		t.Errorf("help: want it to start with the header %q, got\n%s", helpHeader, out)
	}
	lines := strings.Split(out, "\n")
	for _, v := range Vars() {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), v.Name+" ") })
		if i < 0 {
			t.Errorf("help: no line for %s", v.Name)
			continue
		}
		line := lines[i]
		if !strings.HasSuffix(line, v.Meaning) {
			t.Errorf("help line %q: want it to end with the meaning %q", line, v.Meaning)
		}
		def := displayDefault(v.Default)
		if len(def) > maxInlineDefault {
			line = lines[i+1]
		}
		if !strings.Contains(line, def) {
			t.Errorf("help for %s: want the default %q, got %q", v.Name, def, line)
		}
	}
	// Aligned: every meaning starts in the same column.
	col := -1
	for _, v := range Vars() {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), v.Name+" ") {
				c := strings.Index(l, v.Meaning)
				if col >= 0 && c != col {
					t.Errorf("help: %s meaning starts at column %d, want %d", v.Name, c, col)
				}
				col = c
			}
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteHelpError(t *testing.T) {
	t.Parallel()
	if err := WriteHelp(failWriter{}); err == nil {
		t.Errorf("WriteHelp to a failing writer: got no error, want one")
	}
}

// docsRow renders a Var as a row of the table in docs/configuration.md.
func docsRow(v Var) string {
	def := "(empty)"
	if v.Default != "" {
		def = "`" + v.Default + "`"
	}
	return fmt.Sprintf("| `%s` | %s | %s |", v.Name, def, v.Meaning)
}

const docsTableHeader = "| Variable | Default | Meaning |"

// docsTable returns the lines of the variable table (without header and
// separator) and their position in lines.
func docsTable(t *testing.T, lines []string) (rows []string, start, end int) {
	t.Helper()
	h := slices.Index(lines, docsTableHeader)
	if h < 0 || h+1 >= len(lines) || !strings.HasPrefix(lines[h+1], "|--") && !strings.HasPrefix(lines[h+1], "| --") && !strings.HasPrefix(lines[h+1], "|:--") {
		t.Fatalf("%s: no table starting with %q and a separator line", docsPath, docsTableHeader)
	}
	start = h + 2
	end = start
	for end < len(lines) && strings.HasPrefix(lines[end], "|") {
		end++
	}
	return lines[start:end], start, end
}

// parseDocsRow reads back the cells of a row written like docsRow.
func parseDocsRow(row string) (Var, bool) {
	cells := strings.Split(strings.Trim(strings.TrimSpace(row), "|"), "|")
	if len(cells) != 3 {
		return Var{}, false
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	def := cells[1]
	if def == "(empty)" {
		def = ""
	} else if d, ok := strings.CutPrefix(def, "`"); ok {
		if def, ok = strings.CutSuffix(d, "`"); !ok {
			return Var{}, false
		}
	} else {
		return Var{}, false
	}
	return Var{Name: strings.Trim(cells[0], "`"), Default: def, Meaning: cells[2]}, true
}

// TestDocsMatchVars keeps docs/configuration.md's table equal to Vars().
// Run with -update to rewrite the table.
func TestDocsMatchVars(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	lines := strings.Split(string(data), "\n")
	rows, start, end := docsTable(t, lines)

	vars := Vars()
	if *update {
		want := make([]string, len(vars))
		for i, v := range vars {
			want[i] = docsRow(v)
		}
		out := slices.Concat(lines[:start], want, lines[end:])
		if err := os.WriteFile(docsPath, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatalf("update docs: %v", err)
		}
		return
	}

	docs := make(map[string]Var)
	var docNames []string
	for _, row := range rows {
		v, ok := parseDocsRow(row)
		if !ok {
			t.Errorf("%s: malformed row %q, want %q-style rows", docsPath, row, docsRow(vars[0]))
			continue
		}
		docs[v.Name] = v
		docNames = append(docNames, v.Name)
	}
	var diff []string
	for _, v := range vars {
		d, ok := docs[v.Name]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("missing row for %s:\n  want %s", v.Name, docsRow(v)))
		case d != v:
			diff = append(diff, fmt.Sprintf("row for %s differs:\n  got  %s\n  want %s", v.Name, docsRow(d), docsRow(v)))
		}
	}
	for _, name := range docNames {
		if !slices.ContainsFunc(vars, func(v Var) bool { return v.Name == name }) {
			diff = append(diff, fmt.Sprintf("row for %s: no such variable in Vars()", name))
		}
	}
	if len(diff) == 0 {
		var names []string
		for _, v := range vars {
			names = append(names, v.Name)
		}
		if !slices.Equal(docNames, names) {
			diff = append(diff, fmt.Sprintf("rows out of order:\n  got  %q\n  want %q", docNames, names))
		}
	}
	if len(diff) > 0 {
		t.Errorf("%s drifted from config.Vars() (fix the help tags or the docs; `go test ./config -run TestDocsMatchVars -update` rewrites the table):\n%s",
			docsPath, strings.Join(diff, "\n"))
	}
}
