package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Concurrency is UPSTREAM_CONCURRENCY: how many forwarded requests may be in flight to the
// backend at once. 0 is "auto": the gateway finds the limit from the backend's own behaviour
// (gateway/gate); a number from 1 to MaxConcurrency fixes it.
type Concurrency int

// MaxConcurrency is the largest fixed limit accepted, and the adaptive limit's bound.
const MaxConcurrency = 1000

// UnmarshalText reads "auto" (any case) or a whole number from 1 to MaxConcurrency.
func (c *Concurrency) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if strings.EqualFold(s, "auto") {
		*c = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxConcurrency {
		return fmt.Errorf("must be auto or a whole number from 1 to %d", MaxConcurrency)
	}
	*c = Concurrency(n)
	return nil
}

// String is "auto" for 0, else the number.
func (c Concurrency) String() string {
	if c == 0 {
		return "auto"
	}
	return strconv.Itoa(int(c))
}
