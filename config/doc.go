// Package config is the only part of hfgate that reads the environment.
//
// [Load] turns a map of environment variables into a [Config], reporting
// every problem at once as one "VARIABLE: problem" line each, and never
// echoing a value (a value may be a secret pasted into the wrong variable).
// Tests pass plain maps, so they run in parallel and never touch the
// process environment.
//
// Every variable is declared once, as a struct tag on [Config]: `env` names
// it, `envDefault` gives its default and `help` says what it means. [Vars],
// [WriteHelp] and docs/configuration.md are all derived from those tags (a
// test keeps the document in step).
//
// Besides the settings themselves, Load derives two things the gateway
// needs: [Config.Missing], the REQUIRED_ENV names that are unset or empty,
// and [Config.Secrets], the values a log handler must mask.
//
// The package imports neither gateway/ nor middleware/.
package config
