package main

import (
	"bytes"
	"testing"

	"github.com/mcpoauth/mcpoauth/example/internal/readmetest"
)

// The README shows this program as "Embedding in ten lines" and says it
// compiles and runs as is. main.go is that program, so go vet and go test
// compile it; this test keeps the README's copy byte-identical to it.
func TestREADMEShowsThisProgram(t *testing.T) {
	block, program := readmetest.Block(t, "## Embedding in ten lines")
	if !bytes.Equal(block, program) {
		t.Errorf("the README's \"Embedding in ten lines\" program differs from example/tenlines/main.go; "+
			"change both together (copy main.go into the README's go block)\nREADME:\n%s", block)
	}
}
