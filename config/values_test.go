package config

import "net/url"

// mustURL parses a URL known to be valid in a test.
func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
