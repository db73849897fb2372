package main

import (
	"bytes"
	"os"
	"strings"
)

func splitLines(s string) []string { return strings.Split(s, "\n") }

func cut(line, sep string) (string, string, bool) {
	k, v, ok := strings.Cut(line, sep)
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }

func createFile(path string) (*os.File, error) { return os.Create(path) }
