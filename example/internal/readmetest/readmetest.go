// Package readmetest is what the tests of the example programs the
// repository's README quotes share: the README's code block for a program,
// and the program.
package readmetest

import (
	"bytes"
	"os"
	"testing"
)

// Block returns the body of the README's first ```go block after the line
// heading ("## Embedding in ten lines"), newlines included, and main.go of
// the test's directory: the program the block shows. It fails the test when
// either cannot be read or the README has no such block.
func Block(t *testing.T, heading string) (block, program []byte) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err = os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	block, ok := codeBlockAfter(readme, heading+"\n", "```go\n")
	if !ok {
		t.Fatalf("README.md has no ```go block after its %q heading", heading)
	}
	return block, program
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
