package modeltest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The kit's assertions use the standard library's testing alone, as
// testing/fstest does: a Model's author runs the kit from their own tests,
// and their build should not pull an assertion library for it.
//
// Each one stops the subtest with t.Fatalf, since a clause cannot go on once
// a record is not what it must be, and reports at the caller's line
// (t.Helper). msgAndArgs, optional, says what was being checked: a format
// and its arguments, printed before what went wrong.

// noError fails the test if err is not nil.
func noError(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", prefix(msgAndArgs), err)
	}
}

// errorIs fails the test unless errors.Is(err, target).
func errorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%sgot no error, want %v", prefix(msgAndArgs), target)
	case !errors.Is(err, target):
		t.Fatalf("%sgot error %v, want one that is %v (errors.Is)", prefix(msgAndArgs), err, target)
	}
}

// isNil fails the test unless got is nil: a nil interface, or one holding a
// nil pointer, map, slice, channel or function.
func isNil(t testing.TB, got any, msgAndArgs ...any) {
	t.Helper()
	if !nilValue(got) {
		t.Fatalf("%sgot %s, want nil", prefix(msgAndArgs), show(got))
	}
}

// notNil fails the test if got is nil, as isNil understands it.
func notNil(t testing.TB, got any, msgAndArgs ...any) {
	t.Helper()
	if nilValue(got) {
		t.Fatalf("%sgot nil", prefix(msgAndArgs))
	}
}

// equal fails the test unless want and got are equal (reflect.DeepEqual),
// and lists the fields or map keys that differ.
func equal[T any](t testing.TB, want, got T, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	d := diff(reflect.ValueOf(want), reflect.ValueOf(got), "")
	if d == "" {
		d = fmt.Sprintf("\n\tgot:  %s\n\twant: %s", show(got), show(want))
	}
	head := "not equal:"
	if p := prefix(msgAndArgs); p != "" {
		head = strings.TrimSuffix(p, " ")
	}
	t.Fatalf("%s%s", head, d)
}

// prefix formats msgAndArgs as the start of a failure message: "" or the
// message and ": ".
func prefix(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	format, ok := msgAndArgs[0].(string)
	if !ok {
		return fmt.Sprint(msgAndArgs...) + ": "
	}
	return fmt.Sprintf(format, msgAndArgs[1:]...) + ": "
}

func nilValue(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// diff returns one line per difference between want and got, which are of
// one type: a field of a struct whose fields are all exported (a record,
// client metadata) or a key of a map is named by its path, and any other
// value is shown whole.
func diff(want, got reflect.Value, path string) string {
	switch {
	case !want.IsValid() || !got.IsValid():
		return "" // a nil interface: equal shows the values whole
	case want.Kind() == reflect.Interface && !want.IsNil() && !got.IsNil() && want.Elem().Type() == got.Elem().Type():
		return diff(want.Elem(), got.Elem(), path)
	case want.Kind() == reflect.Struct && allExported(want.Type()):
		var b strings.Builder
		for i := range want.NumField() {
			b.WriteString(diff(want.Field(i), got.Field(i), join(path, want.Type().Field(i).Name)))
		}
		return b.String()
	case want.Kind() == reflect.Map && want.Type().Key().Kind() == reflect.String:
		keys := map[string]reflect.Value{}
		for _, m := range []reflect.Value{want, got} {
			for _, k := range m.MapKeys() {
				keys[k.String()] = k
			}
		}
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(keys)) {
			w, g := want.MapIndex(keys[name]), got.MapIndex(keys[name])
			switch {
			case !g.IsValid():
				fmt.Fprintf(&b, "\n\t%s: missing, want %s", join(path, name), show(w.Interface()))
			case !w.IsValid():
				fmt.Fprintf(&b, "\n\t%s: got %s, want it absent", join(path, name), show(g.Interface()))
			default:
				b.WriteString(diff(w, g, join(path, name)))
			}
		}
		return b.String()
	}
	w, g := want.Interface(), got.Interface()
	if reflect.DeepEqual(w, g) {
		return ""
	}
	if path == "" {
		return fmt.Sprintf("\n\tgot:  %s\n\twant: %s", show(g), show(w))
	}
	return fmt.Sprintf("\n\t%s: got %s, want %s", path, show(g), show(w))
}

func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// show formats a value for a failure message: strings quoted, so that a
// NUL, a trailing space or invalid UTF-8 is visible; anything else with %+v.
func show(v any) string {
	switch v := v.(type) {
	case string, []string:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%+v", v)
}
