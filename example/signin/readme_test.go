package main

import (
	"bytes"
	"testing"

	"github.com/mcpoauth/mcpoauth/example/internal/readmetest"
)

// The README's "Sign in with your identity provider" shows the lines of
// this program that differ from "Embedding in ten lines". This test keeps
// them true: every line of the README's block is a line of main.go, in the
// same order, so that the excerpt compiles as part of a program that does.
func TestREADMEShowsLinesOfThisProgram(t *testing.T) {
	block, program := readmetest.Block(t, "## Sign in with your identity provider")
	lines := bytes.Split(program, []byte("\n"))
	next := 0
	for _, want := range bytes.Split(block, []byte("\n")) {
		want = bytes.TrimSpace(want)
		if len(want) == 0 || bytes.Equal(want, []byte("// ...")) {
			continue
		}
		for next < len(lines) && !bytes.Equal(bytes.TrimSpace(lines[next]), want) {
			next++
		}
		if next == len(lines) {
			t.Fatalf("the README's line %q is not in example/signin/main.go (after the lines before it)", want)
		}
		next++
	}
}
