package upstream

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"golang.org/x/oauth2"
)

// TokenKey is a key of the upstream token vault (Options.TokenKeys).
type TokenKey struct {
	// ID names the key in every entry it seals, so that the entry is
	// opened with the right key after a rotation: 1 to 255 bytes, unique
	// among the keys. It is not secret.
	ID string
	// Key is the 32-byte AES-256 key. Keep it secret.
	Key []byte
}

// Errors of Token and UserInfo, for errors.Is.
var (
	// ErrNoUpstreamToken: the grant has no upstream token (it was revoked
	// or expired, it was approved without a vault, or its access token
	// expired without a refresh token). The user must sign in upstream
	// again and approve the client anew.
	ErrNoUpstreamToken = errors.New("upstream: no upstream token")
	// ErrUpstreamRefresh: the provider refused or failed to refresh the
	// grant's upstream token. The error says why, without any token.
	ErrUpstreamRefresh = errors.New("upstream: refreshing the upstream token failed")
)

// Timing of the vault.
const (
	// expirySkew: an access token this close to its expiry is refreshed
	// first, so that it does not expire on its way to the provider.
	expirySkew = 30 * time.Second
	// leaseDuration is how long a replica may refresh a grant's tokens
	// before the others consider it gone and try themselves. It exceeds
	// refreshTimeout, so that a live lease holder never overstays.
	leaseDuration  = 30 * time.Second
	refreshTimeout = 20 * time.Second
	// waitTimeout bounds a whole refresh, waiting for another replica's
	// lease included.
	waitTimeout = leaseDuration + refreshTimeout
	// pollMin and pollMax bound the backoff of a replica waiting for
	// another's refresh.
	pollMin = 20 * time.Millisecond
	pollMax = 500 * time.Millisecond
)

// sealFormat is the first byte of a sealed entry: format 1 is
// sealFormat | len(key ID) | key ID | 12-byte nonce | AES-256-GCM
// ciphertext of the JSON payload, with the entry ID as additional data.
const sealFormat = 1

// vaultPayload is what an entry seals. Subject is the user's subject at
// the provider, so that UserInfo can check the answer is about them.
type vaultPayload struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Subject      string    `json:"sub,omitempty"`
}

// payloadOf is what an entry seals of tok, the tokens of the user subject.
func payloadOf(tok *oauth2.Token, subject string) vaultPayload {
	return vaultPayload{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, Expiry: tok.Expiry, Subject: subject}
}

// accessToken is the access token of p, without its refresh token (see
// SignIn.Token).
func (p vaultPayload) accessToken() *oauth2.Token {
	return &oauth2.Token{AccessToken: p.AccessToken, TokenType: p.TokenType, Expiry: p.Expiry}
}

type vaultKey struct {
	id   string
	aead cipher.AEAD
}

// vault keeps the upstream tokens in an UpstreamTokenStore, sealed.
type vault struct {
	store mcpoauth.UpstreamTokenStore
	keys  []vaultKey // keys[0] seals; all open
	log   *slog.Logger
	now   func() time.Time

	mu    sync.Mutex
	calls map[string]*refreshCall // grant id → the refresh under way

	// Test hooks: joined runs when a caller joins a refresh under way in
	// this process, leaseWait when a refresh waits for another replica's
	// lease.
	joined, leaseWait func()
}

// refreshCall is a refresh shared by the callers of one process.
type refreshCall struct {
	done chan struct{}
	p    vaultPayload
	err  error
}

// refreshFunc asks the provider for new tokens with the refresh token.
type refreshFunc func(ctx context.Context, refreshToken string) (*oauth2.Token, error)

func newVault(store mcpoauth.UpstreamTokenStore, keys []TokenKey, log *slog.Logger) (*vault, error) {
	if store == nil {
		if len(keys) > 0 {
			return nil, errors.New("upstream: TokenKeys without a TokenStore")
		}
		return nil, nil
	}
	if len(keys) == 0 {
		return nil, errors.New("upstream: a TokenStore needs TokenKeys")
	}
	v := &vault{store: store, log: log, now: time.Now, calls: map[string]*refreshCall{}}
	seen := map[string]bool{}
	for i, k := range keys {
		if k.ID == "" || len(k.ID) > 255 {
			return nil, fmt.Errorf("upstream: TokenKeys[%d]: the ID must be 1 to 255 bytes", i)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("upstream: TokenKeys[%d]: ID %q used twice", i, k.ID)
		}
		seen[k.ID] = true
		aead, err := newAEAD(k.Key)
		if err != nil {
			return nil, fmt.Errorf("upstream: TokenKeys[%d] (%q): the key %w", i, k.ID, err)
		}
		v.keys = append(v.keys, vaultKey{id: k.ID, aead: aead})
	}
	return v, nil
}

// seal encrypts p for the entry entryID under the first key.
func (v *vault) seal(entryID string, p vaultPayload) ([]byte, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	k := v.keys[0]
	out := make([]byte, 0, 2+len(k.id)+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out = append(out, sealFormat, byte(len(k.id)))
	out = append(out, k.id...)
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plain, []byte(entryID)), nil
}

// open decrypts the entry entryID; key is the index of the key that
// sealed it (0: the current one).
func (v *vault) open(entryID string, sealed []byte) (p vaultPayload, key int, err error) {
	if len(sealed) < 2 || sealed[0] != sealFormat || len(sealed) < 2+int(sealed[1]) {
		return p, 0, errors.New("upstream: token vault entry in an unknown format")
	}
	id, rest := string(sealed[2:2+int(sealed[1])]), sealed[2+int(sealed[1]):]
	key = -1
	for i, k := range v.keys {
		if k.id == id {
			key = i
		}
	}
	if key < 0 {
		return p, 0, fmt.Errorf("upstream: token vault entry sealed under key %q, which is not among the TokenKeys", id)
	}
	aead := v.keys[key].aead
	if len(rest) < aead.NonceSize() {
		return p, 0, errors.New("upstream: token vault entry truncated")
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(entryID))
	if err != nil {
		return p, 0, errors.New("upstream: token vault entry does not open (tampered with, or sealed for another entry)")
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, 0, errors.New("upstream: token vault entry unreadable")
	}
	return p, key, nil
}

// grantEntryID is the ID of a grant's entry.
func grantEntryID(grantID string) string { return "grant:" + grantID }

// saveSession stores the tokens of a sign-in as a session entry, until
// expires, and returns its ID.
func (v *vault) saveSession(ctx context.Context, p vaultPayload, expires time.Time) (string, error) {
	id := randomString()
	sealed, err := v.seal(id, p)
	if err != nil {
		return "", err
	}
	if err := v.store.SaveUpstreamToken(ctx, &mcpoauth.UpstreamToken{ID: id, Sealed: sealed, ExpiresAt: expires}); err != nil {
		return "", fmt.Errorf("upstream: token vault: %w", err)
	}
	return id, nil
}

// exists reports whether the session entry is still there (not handed to
// a grant, consumed by a logout or swept).
func (v *vault) exists(ctx context.Context, id string) (bool, error) {
	_, err := v.store.GetUpstreamToken(ctx, id)
	switch {
	case errors.Is(err, mcpoauth.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("upstream: token vault: %w", err)
	}
	return true, nil
}

// drop deletes a session entry, if it is still there.
func (v *vault) drop(ctx context.Context, id string) {
	if _, err := v.store.ConsumeUpstreamToken(ctx, id); err != nil && !errors.Is(err, mcpoauth.ErrNotFound) {
		v.log.WarnContext(ctx, "upstream token vault: deleting a session's entry failed", "err", err.Error())
	}
}

// moveToGrant takes the session entry sessionID (so that no other grant
// gets it) and stores its tokens as the grant's entry, sealed anew.
func (v *vault) moveToGrant(ctx context.Context, sessionID, subject string, g *mcpoauth.Grant) error {
	ent, err := v.store.ConsumeUpstreamToken(ctx, sessionID)
	if errors.Is(err, mcpoauth.ErrNotFound) {
		return fmt.Errorf("%w: the session's upstream tokens went to another grant; sign in again", ErrNoUpstreamToken)
	}
	if err != nil {
		return fmt.Errorf("upstream: token vault: %w", err)
	}
	p, _, err := v.open(sessionID, ent.Sealed)
	if err != nil {
		return err
	}
	if p.Subject != subject {
		return errors.New("upstream: the session's upstream tokens belong to another user")
	}
	id := grantEntryID(g.ID)
	sealed, err := v.seal(id, p)
	if err != nil {
		return err
	}
	t := &mcpoauth.UpstreamToken{ID: id, GrantID: g.ID, ClientID: g.ClientID, Sealed: sealed, ExpiresAt: g.ExpiresAt}
	if err := v.store.SaveUpstreamToken(ctx, t); err != nil {
		return fmt.Errorf("upstream: token vault: storing the grant's entry: %w", err)
	}
	return nil
}

// load reads and opens the grant's entry; key is the index of the key
// that sealed it.
func (v *vault) load(ctx context.Context, grantID string) (*mcpoauth.UpstreamToken, vaultPayload, int, error) {
	id := grantEntryID(grantID)
	ent, err := v.store.GetUpstreamToken(ctx, id)
	switch {
	case errors.Is(err, mcpoauth.ErrNotFound):
		return nil, vaultPayload{}, 0, fmt.Errorf("%w for grant %s", ErrNoUpstreamToken, grantID)
	case err != nil:
		return nil, vaultPayload{}, 0, fmt.Errorf("upstream: token vault: %w", err)
	case ent.GrantID != grantID || !v.now().Before(ent.ExpiresAt):
		// Expired with its grant, not yet swept.
		return nil, vaultPayload{}, 0, fmt.Errorf("%w for grant %s", ErrNoUpstreamToken, grantID)
	}
	p, key, err := v.open(id, ent.Sealed)
	if err != nil {
		return nil, vaultPayload{}, 0, err
	}
	return ent, p, key, nil
}

// fresh reports whether p's access token is good for a while yet, and is
// not refused, the access token the provider refused before its expiry
// ("" for none).
func (v *vault) fresh(p vaultPayload, refused string) bool {
	return p.AccessToken != "" && p.AccessToken != refused && (p.Expiry.IsZero() || v.now().Add(expirySkew).Before(p.Expiry))
}

// token returns the grant's tokens, refreshed first if the access token
// expired or is refused (the one the provider just refused; "" for none).
func (v *vault) token(ctx context.Context, grantID string, refresh refreshFunc, refused string) (vaultPayload, error) {
	ent, p, key, err := v.load(ctx, grantID)
	if err != nil {
		return vaultPayload{}, err
	}
	if v.fresh(p, refused) {
		if key > 0 && !v.now().Before(ent.LeaseUntil) {
			v.reseal(ctx, ent, p)
		}
		return p, nil
	}
	if p.RefreshToken == "" {
		return vaultPayload{}, fmt.Errorf("%w for grant %s: the access token expired and there is no refresh token", ErrNoUpstreamToken, grantID)
	}
	return v.shared(ctx, grantID, refresh, refused)
}

// reseal seals an entry that an old key sealed under the current one, so
// that the old key can be retired. A conflict means another writer got
// there first, which is as good.
func (v *vault) reseal(ctx context.Context, ent *mcpoauth.UpstreamToken, p vaultPayload) {
	sealed, err := v.seal(ent.ID, p)
	if err != nil {
		return
	}
	next := *ent
	next.Sealed, next.Version = sealed, ent.Version+1
	if err := v.store.ReplaceUpstreamToken(ctx, &next, ent.Version); err != nil && !errors.Is(err, mcpoauth.ErrConflict) && !errors.Is(err, mcpoauth.ErrNotFound) {
		v.log.WarnContext(ctx, "upstream token vault: re-sealing under the current key failed", "grant", ent.GrantID, "err", err.Error())
	}
}

// shared refreshes the grant's tokens once for all the callers of this
// process that ask at the same time. The refresh runs detached from the
// caller that started it, so that its going away does not fail the
// others; each caller waits as long as its own context lets it.
func (v *vault) shared(ctx context.Context, grantID string, refresh refreshFunc, refused string) (vaultPayload, error) {
	v.mu.Lock()
	c, joined := v.calls[grantID], true
	if c == nil {
		joined = false
		c = &refreshCall{done: make(chan struct{})}
		v.calls[grantID] = c
		go func() {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitTimeout)
			defer cancel()
			c.p, c.err = v.refreshGrant(wctx, grantID, refresh, refused)
			v.mu.Lock()
			delete(v.calls, grantID)
			v.mu.Unlock()
			close(c.done)
		}()
	}
	v.mu.Unlock()
	if joined && v.joined != nil {
		v.joined()
	}
	select {
	case <-c.done:
		return c.p, c.err
	case <-ctx.Done():
		return vaultPayload{}, ctx.Err()
	}
}

// refreshGrant refreshes the grant's tokens unless another replica does:
// it takes a lease on the entry by compare-and-set (LeaseUntil, Version+1),
// or, while another replica holds one, polls the entry until that
// replica's result is there or its lease lapses.
func (v *vault) refreshGrant(ctx context.Context, grantID string, refresh refreshFunc, refused string) (vaultPayload, error) {
	delay := pollMin
	for {
		ent, p, _, err := v.load(ctx, grantID)
		if err != nil {
			return vaultPayload{}, err
		}
		if v.fresh(p, refused) {
			return p, nil // another replica refreshed
		}
		now := v.now()
		if now.Before(ent.LeaseUntil) {
			if v.leaseWait != nil {
				v.leaseWait()
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return vaultPayload{}, fmt.Errorf("%w for grant %s: waiting for another replica's refresh: %v", ErrUpstreamRefresh, grantID, ctx.Err())
			}
			delay = min(2*delay, pollMax)
			continue
		}
		if p.RefreshToken == "" {
			return vaultPayload{}, fmt.Errorf("%w for grant %s: the access token expired and there is no refresh token", ErrNoUpstreamToken, grantID)
		}
		lease := *ent
		lease.LeaseUntil, lease.Version = now.Add(leaseDuration), ent.Version+1
		err = v.store.ReplaceUpstreamToken(ctx, &lease, ent.Version)
		switch {
		case errors.Is(err, mcpoauth.ErrConflict):
			continue // another replica moved first: look again
		case errors.Is(err, mcpoauth.ErrNotFound):
			return vaultPayload{}, fmt.Errorf("%w for grant %s", ErrNoUpstreamToken, grantID)
		case err != nil:
			return vaultPayload{}, fmt.Errorf("upstream: token vault: %w", err)
		}
		return v.refreshLeased(ctx, &lease, p, refresh)
	}
}

// refreshLeased refreshes the tokens of the entry this replica holds the
// lease of, and stores the new ones (releasing the lease), or releases the
// lease on failure.
func (v *vault) refreshLeased(ctx context.Context, lease *mcpoauth.UpstreamToken, p vaultPayload, refresh refreshFunc) (vaultPayload, error) {
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	tok, err := refresh(rctx, p.RefreshToken)
	cancel()
	if err == nil && tok.AccessToken == "" {
		err = errors.New("no access token in the refresh response")
	}
	if err != nil {
		release := *lease
		release.LeaseUntil, release.Version = time.Time{}, lease.Version+1
		if rerr := v.store.ReplaceUpstreamToken(ctx, &release, lease.Version); rerr != nil {
			v.log.WarnContext(ctx, "upstream token vault: releasing a lease failed", "grant", lease.GrantID, "err", rerr.Error())
		}
		return vaultPayload{}, fmt.Errorf("%w for grant %s: %v", ErrUpstreamRefresh, lease.GrantID, errWithoutToken(err))
	}
	next := payloadOf(tok, p.Subject)
	if next.RefreshToken == "" {
		next.RefreshToken = p.RefreshToken // RFC 6749 §6: the provider may keep the old one
	}
	sealed, err := v.seal(lease.ID, next)
	if err != nil {
		return vaultPayload{}, err
	}
	stored := *lease
	stored.Sealed, stored.LeaseUntil, stored.Version = sealed, time.Time{}, lease.Version+1
	err = v.store.ReplaceUpstreamToken(ctx, &stored, lease.Version)
	switch {
	case errors.Is(err, mcpoauth.ErrNotFound):
		// The grant was revoked while we refreshed: its token is no more.
		return vaultPayload{}, fmt.Errorf("%w for grant %s", ErrNoUpstreamToken, lease.GrantID)
	case err != nil:
		// The lease lapsed and another replica took over, or the store
		// failed: the new tokens are not kept, but the access token is
		// good.
		v.log.WarnContext(ctx, "upstream token vault: storing refreshed tokens failed", "grant", lease.GrantID, "err", err.Error())
	}
	return next, nil
}

// OnApproval is the mcpoauth.Config.OnApproval hook: it returns the
// signed-in user's identity (Issuer, Subject, Email, Name and the
// Options.Claims kept), which the server stores with the grant and tells
// tools (bearer.AuthInfo.Identity). The grant's UserID must be the
// session's Identity.UserID, as GetUser returns it.
//
// With a token vault (Options.TokenStore), it also hands the session's
// upstream tokens to the grant: they move, so the session is over for
// approvals (see the package documentation), and it fails with an error
// wrapping ErrNoUpstreamToken if another approval took them first.
func (s *SignIn) OnApproval(r *http.Request, g *mcpoauth.Grant) (*mcpoauth.Identity, error) {
	sess, err := s.session(r)
	if errors.Is(err, errNoCookie) {
		return nil, errors.New("upstream: nobody is signed in upstream (or the session's upstream tokens went to another grant)")
	}
	if err != nil {
		return nil, err
	}
	if g.UserID != sess.UserID() {
		return nil, fmt.Errorf("upstream: the grant's user %q is not the signed-in user %q", g.UserID, sess.UserID())
	}
	if s.vault != nil {
		if err := s.vault.moveToGrant(r.Context(), sess.Vault, sess.Subject, g); err != nil {
			return nil, err
		}
	}
	return &mcpoauth.Identity{
		Issuer:  sess.Issuer,
		Subject: sess.Subject,
		Email:   sess.Email,
		Name:    sess.Name,
		Claims:  maps.Clone(sess.Kept),
	}, nil
}

// Token returns a valid upstream access token of the grant (the GrantID
// of the MCP request's bearer.AuthInfo), for a tool to call the provider's
// APIs as the user. If the stored one expired, it is refreshed at the
// provider first, once however many callers ask at the same time, in this
// process and across replicas sharing the TokenStore. The token has no
// refresh token: refreshing is the vault's job, and a caller refreshing on
// its own would spend a rotating refresh token behind the vault's back.
//
// Use it only to call the provider; never hand it to the MCP client (no
// token passthrough). Errors wrap ErrNoUpstreamToken when the grant has
// none (revoked, expired, no vault) and ErrUpstreamRefresh when the
// provider did not refresh it; no error carries a token.
func (s *SignIn) Token(ctx context.Context, grantID string) (*oauth2.Token, error) {
	p, err := s.vaultToken(ctx, grantID)
	if err != nil {
		return nil, err
	}
	return p.accessToken(), nil
}

func (s *SignIn) vaultToken(ctx context.Context, grantID string) (vaultPayload, error) {
	if s.vault == nil {
		return vaultPayload{}, fmt.Errorf("%w: no token vault (Options.TokenStore) configured", ErrNoUpstreamToken)
	}
	return s.vault.token(ctx, grantID, s.refresh, "")
}

// refresh is the refresh_token grant at the provider.
func (s *SignIn) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return s.oauth.TokenSource(s.clientContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// UserInfo asks the provider's user-info endpoint (NewOIDC: the discovered
// userinfo_endpoint; NewOAuth2: UserInfoURL) about the grant's user, with
// the grant's upstream token (Token), within 10 seconds and 1 MiB. An
// answer about another subject than the grant's user is refused (OpenID
// Connect Core §5.3.2). Numbers arrive as json.Number.
func (s *SignIn) UserInfo(ctx context.Context, grantID string) (map[string]any, error) {
	p, err := s.vaultToken(ctx, grantID)
	if err != nil {
		return nil, err
	}
	tok := p.accessToken()
	info, sub, err := s.userInfo(s.clientContext(ctx), tok)
	if errors.Is(err, errTokenRefused) && p.RefreshToken != "" {
		// The provider refused a token before its expiry (revoked, or a
		// shorter life than expires_in said): refresh it, once, and ask
		// again.
		if p, err = s.vault.token(ctx, grantID, s.refresh, p.AccessToken); err != nil {
			return nil, err
		}
		tok = p.accessToken()
		info, sub, err = s.userInfo(s.clientContext(ctx), tok)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: user-info request: %w", err)
	}
	if sub != p.Subject {
		return nil, errors.New("upstream: the user-info answer is about another user than the grant's")
	}
	return info, nil
}
