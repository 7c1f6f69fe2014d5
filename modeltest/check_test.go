package modeltest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and stops
// the goroutine, as testing.T's does.
type fatalRecorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runCheck runs check on a fatalRecorder in its own goroutine, so that its
// Fatalf can stop it, and returns the recorder.
func runCheck(check func(t testing.TB)) *fatalRecorder {
	r := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r
}

// TestChecks shows that each assertion of the kit passes what it must, and
// fails what it must with a message that says what differs.
func TestChecks(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tok := mcpoauth.Token{Digest: mcpoauth.Digest{1}, ClientID: "client-a", Scopes: []string{"read"}, ExpiresAt: t0}
	changed := tok
	changed.ClientID, changed.ExpiresAt, changed.RotatedAt = "client-a\x00", t0.Truncate(time.Second), t0
	var nilToken *mcpoauth.Token
	wrapped := fmt.Errorf("get: %w", mcpoauth.ErrNotFound)

	tests := []struct {
		name  string
		check func(t testing.TB)
		// want are the substrings of the failure message; nil: passes.
		want []string
	}{
		{"noError passes nil", func(t testing.TB) { noError(t, nil) }, nil},
		{"noError fails an error", func(t testing.TB) { noError(t, errors.New("boom"), "call %d", 3) },
			[]string{"call 3: unexpected error: boom"}},
		{"errorIs passes a wrapped target", func(t testing.TB) { errorIs(t, wrapped, mcpoauth.ErrNotFound) }, nil},
		{"errorIs fails nil", func(t testing.TB) { errorIs(t, nil, mcpoauth.ErrNotFound, "client_id %q", "x") },
			[]string{`client_id "x": got no error, want mcpoauth: record not found`}},
		{"errorIs fails another error", func(t testing.TB) { errorIs(t, wrapped, mcpoauth.ErrConflict) },
			[]string{"got error get: mcpoauth: record not found, want one that is mcpoauth: record already exists"}},
		{"isNil passes a nil pointer", func(t testing.TB) { isNil(t, nilToken) }, nil},
		{"isNil fails a record", func(t testing.TB) { isNil(t, &tok) }, []string{"want nil", "ClientID:client-a"}},
		{"notNil passes a record", func(t testing.TB) { notNil(t, &tok) }, nil},
		{"notNil fails a nil pointer in an interface", func(t testing.TB) { notNil(t, any(nilToken), "the token") },
			[]string{"the token: got nil"}},
		{"equal passes equal records", func(t testing.TB) { equal(t, tok, copyTokens([]*mcpoauth.Token{&tok})[0]) }, nil},
		{"equal names the fields that differ", func(t testing.TB) { equal(t, tok, changed, "the token") },
			[]string{
				"the token:\n\t",
				"\n\tClientID: got \"client-a\\x00\", want \"client-a\"",
				"\n\tRotatedAt: got 2026-01-02 03:04:05.000000006 +0000 UTC, want 0001-01-01 00:00:00 +0000 UTC",
				"\n\tExpiresAt: got 2026-01-02 03:04:05 +0000 UTC, want 2026-01-02 03:04:05.000000006 +0000 UTC",
			}},
		{"equal names the map keys that differ", func(t testing.TB) {
			equal(t, map[string]any{"a": "x", "b": []any{"1"}, "c": map[string]any{"d": 1.0}},
				map[string]any{"b": []any{"2"}, "c": map[string]any{"d": 2.0}, "e": true})
		}, []string{"\n\ta: missing, want \"x\"", "\n\tb: got [2], want [1]", "\n\tc.d: got 2, want 1", "\n\te: got true, want it absent"}},
		{"equal shows other values whole", func(t testing.TB) { equal(t, 1, 2) }, []string{"not equal:\n\tgot:  2\n\twant: 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(tt.check)
			if r.failed != (tt.want != nil) {
				t.Fatalf("failed = %v, want %v (message %q)", r.failed, tt.want != nil, r.msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.msg, w) {
					t.Errorf("the message %q lacks %q", r.msg, w)
				}
			}
		})
	}
	// Fields that are equal are not listed.
	if r := runCheck(func(t testing.TB) { equal(t, tok, changed) }); strings.Contains(r.msg, "Scopes") || strings.Contains(r.msg, "Digest") {
		t.Errorf("the message lists fields that are equal: %q", r.msg)
	}
}
