package bearer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContextRoundTrip(t *testing.T) {
	info := &AuthInfo{ClientID: "c1", UserID: "u1"}
	ctx := ContextWithAuthInfo(context.Background(), info)

	got, ok := FromContext(ctx)
	require.True(t, ok)
	require.Same(t, info, got)

	got, ok = FromContext(context.Background())
	require.False(t, ok)
	require.Nil(t, got)

	// A nil *AuthInfo stored explicitly is "no AuthInfo", never a nil
	// pointer handed to a handler that trusts ok.
	got, ok = FromContext(ContextWithAuthInfo(context.Background(), nil))
	require.False(t, ok)
	require.Nil(t, got)

	// Another package's key with the same underlying value cannot forge it.
	type otherKey struct{}
	got, ok = FromContext(context.WithValue(context.Background(), otherKey{}, info))
	require.False(t, ok)
	require.Nil(t, got)
}

func TestVerifierFunc(t *testing.T) {
	want := &AuthInfo{ClientID: "c"}
	var v Verifier = VerifierFunc(func(_ context.Context, tok string) (*AuthInfo, error) {
		if tok == "ok" {
			return want, nil
		}
		return nil, fmt.Errorf("lookup: %w", ErrInvalidToken)
	})
	got, err := v.VerifyAccessToken(context.Background(), "ok")
	require.NoError(t, err)
	require.Same(t, want, got)

	_, err = v.VerifyAccessToken(context.Background(), "nope")
	require.ErrorIs(t, err, ErrInvalidToken)
	require.True(t, errors.Is(err, ErrInvalidToken))
}
