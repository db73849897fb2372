package config

import (
	"fmt"
	"io"
	"reflect"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// Var describes one environment variable hfgate reads.
type Var struct {
	// Name is the variable's name, such as "PORT".
	Name string
	// Default is the value used when the variable is unset or empty; ""
	// means the default is empty.
	Default string
	// Meaning says in one line what the variable does.
	Meaning string
}

// gradioVar returns the variable that overrides the one named, if any.
// GRADIO_SERVER_PORT and GRADIO_SERVER_NAME are read by Load without being
// Config fields, and Vars lists each right after the variable it overrides.
func gradioVar(name string) (Var, bool) {
	switch name {
	case "PORT":
		return Var{
			Name:    SourceGradioServerPort,
			Meaning: "port set by Hugging Face Python-runtime Spaces; wins over PORT when set",
		}, true
	case "HOST":
		return Var{
			Name:    SourceGradioServerName,
			Meaning: "bind address set by Hugging Face Python-runtime Spaces; wins over HOST when set",
		}, true
	}
	return Var{}, false
}

// Vars lists every variable Load reads, in Config's field order, with
// GRADIO_SERVER_PORT right after PORT and GRADIO_SERVER_NAME right after
// HOST. It is the source of [WriteHelp] and docs/configuration.md.
func Vars() []Var {
	var vars []Var
	for _, v := range taggedVars() {
		vars = append(vars, v)
		if g, ok := gradioVar(v.Name); ok {
			vars = append(vars, g)
		}
	}
	return vars
}

// taggedVars lists Config's env-tagged fields, in field order.
func taggedVars() []Var {
	// An empty Environment keeps env from copying the process environment.
	params, err := env.GetFieldParamsWithOptions(&Config{}, env.Options{Environment: map[string]string{}})
	if err != nil {
		return nil // only a malformed tag gets here; the tests would fail first
	}
	meanings := make(map[string]string)
	keys := fieldKeys()
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, ok := keys[f.Name]; ok {
			meanings[name] = f.Tag.Get("help")
		}
	}
	vars := make([]Var, 0, len(params))
	for _, p := range params {
		vars = append(vars, Var{Name: p.Key, Default: p.DefaultValue, Meaning: meanings[p.Key]})
	}
	return vars
}

// helpHeader opens the output of WriteHelp.
const helpHeader = "hfgate: a gateway for a FastAPI backend on Hugging Face Spaces. Configured only by environment variables:"

// WriteHelp writes a usage header and a table of every variable with its
// default and meaning: what `hfgate -h` prints.
func WriteHelp(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n\n", helpHeader)
	fmt.Fprintf(tw, "  VARIABLE\tDEFAULT\tMEANING\n")
	for _, v := range Vars() {
		// A long default would widen the whole column, so it gets a line
		// of its own under the meaning.
		if def := displayDefault(v.Default); len(def) <= maxInlineDefault {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Meaning)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, "(see below)", v.Meaning)
			fmt.Fprintf(tw, "  \t\tdefault: %s\n", def)
		}
	}
	fmt.Fprintf(tw, "\nAn empty value counts as unset, except TRUSTED_PROXIES, where empty means trust no proxy.\n")
	fmt.Fprintf(tw, "Invalid values stop hfgate with exit status 2 and one VARIABLE: problem line each;\n")
	fmt.Fprintf(tw, "a PORT or HOST that GRADIO_SERVER_PORT or GRADIO_SERVER_NAME overrides is only a warning.\n")
	fmt.Fprintf(tw, "More: docs/configuration.md.\n")
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write help: %w", err)
	}
	return nil
}

// maxInlineDefault is the longest default WriteHelp shows in its column.
const maxInlineDefault = 24

func displayDefault(d string) string {
	if d == "" {
		return "(empty)"
	}
	return d
}
