package mcpoauth

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientIdleLifetime(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    time.Duration
		wantErr bool
	}{
		{name: "default", want: DefaultClientIdleLifetime},
		{name: "never", cfg: Config{ClientIdleLifetime: NoExpiry}, want: NoExpiry},
		{name: "a day past the refresh token", cfg: Config{ClientIdleLifetime: DefaultRefreshTokenLifetime + day}, want: DefaultRefreshTokenLifetime + day},
		{name: "within a day of the refresh token", cfg: Config{ClientIdleLifetime: DefaultRefreshTokenLifetime + day - time.Second}, wantErr: true},
		{name: "a day past a long access token", cfg: Config{AccessTokenLifetime: 30 * day, RefreshTokenLifetime: day, ClientIdleLifetime: 30 * day}, wantErr: true},
		{name: "default follows a longer refresh token", cfg: Config{RefreshTokenLifetime: 120 * day}, want: 121 * day},
		{name: "negative", cfg: Config{ClientIdleLifetime: -2}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Issuer = "https://as.example.com"
			tc.cfg.AuthorizationURL = "/consent"
			tc.cfg.Model = NewMemoryModel(MemoryModelOptions{SweepInterval: NoSweep})
			s, err := tc.cfg.validate()
			if tc.wantErr {
				require.True(t, errors.Is(err, ErrInvalidConfig), "error %v", err)
				require.ErrorContains(t, err, "ClientIdleLifetime")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, s.ClientIdleLifetime)
		})
	}
}
