// Package output follows what a command under test writes, for the interop
// tests and the example's tests: a Buffer that goroutines write while the
// test reads it, and Lines, which keeps a stream and hands on each line as
// it is written (the prompts a user would read).
//
// It is test support, not an API.
package output

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent use: a log sink, or a
// command's stdout, read by the test while the command writes.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	return n, err
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineBacklog is how many unread lines Lines holds; more are dropped from
// WaitLine's view (never from String), so that the writer never blocks.
const lineBacklog = 1000

// Lines is a stream read to its end: String has all of it, WaitLine each
// line as it arrives.
type Lines struct {
	all   Buffer
	lines chan string
}

// Follow reads r to its end in a goroutine.
func Follow(r io.Reader) *Lines {
	l := &Lines{lines: make(chan string, lineBacklog)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			_, _ = l.all.Write(append(sc.Bytes(), '\n'))
			select {
			case l.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, r) // past a line too long to scan
		close(l.lines)
	}()
	return l
}

// String returns the stream so far.
func (l *Lines) String() string { return l.all.String() }

// WaitLine returns the first line not yet seen by WaitLine that, trimmed,
// starts with prefix. It fails the test if the stream ends or
// timeout passes first.
func (l *Lines) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("the stream ended without a line starting with %q:\n%s", prefix, l)
			}
			if s := strings.TrimSpace(line); strings.HasPrefix(s, prefix) {
				return s
			}
		case <-deadline:
			t.Fatalf("no line starting with %q within %s:\n%s", prefix, timeout, l)
		}
	}
}
