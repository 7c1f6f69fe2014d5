package main

import (
	"bytes"
	"os"
	"testing"
)

// The README shows this program as "Embedding in ten lines" and says it
// compiles and runs as is. main.go is that program, so go vet and go test
// compile it; this test keeps the README's copy byte-identical to it.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	block, ok := codeBlockAfter(readme, "## Embedding in ten lines\n", "```go\n")
	if !ok {
		t.Fatal("README.md has no ```go block after its \"## Embedding in ten lines\" heading")
	}
	if !bytes.Equal(block, program) {
		t.Errorf("the README's \"Embedding in ten lines\" program differs from example/tenlines/main.go; "+
			"change both together (copy main.go into the README's go block)\nREADME:\n%s", block)
	}
}

// codeBlockAfter returns the body of the first fenced block opening with
// fence (e.g. "```go\n") after the line heading, up to the closing "```"
// line, newlines included.
func codeBlockAfter(doc []byte, heading, fence string) ([]byte, bool) {
	_, rest, ok := bytes.Cut(doc, []byte("\n"+heading))
	if !ok {
		return nil, false
	}
	_, rest, ok = bytes.Cut(rest, []byte("\n"+fence))
	if !ok {
		return nil, false
	}
	body, _, ok := bytes.Cut(rest, []byte("\n```\n"))
	if !ok {
		return nil, false
	}
	return append(body, '\n'), true
}
