package modeltest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// envMutant names the broken model TestMutant runs the kit against, in the
// child process that TestKitCatchesBrokenModels starts.
const envMutant = "MODELTEST_MUTANT"

// mutant is the MemoryModel with one defect, of the kind a third-party Model
// might have. Its methods are the MemoryModel's except the one overridden.
type mutant struct{ *mcpoauth.MemoryModel }

// mutants maps a defect to the model that has it and to the subtest of the
// kit that must catch it.
var mutants = map[string]struct {
	model   func(m *mcpoauth.MemoryModel) mcpoauth.Model
	catches string
}{
	"consume ignores the client": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return consumeIgnoresClient{mutant{m}} },
		"ConsumeAuthorizationCode/OtherClientIsNotFound",
	},
	"consume tells another client the code was used": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return usedBeforeClient{mutant{m}} },
		"ConsumeAuthorizationCode/OtherClientsUsedIsNotFound",
	},
	"consume reads then writes": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return readThenWrite{mutant{m}} },
		"ConsumeAuthorizationCode/ConcurrentCallsOneWins",
	},
	"pending request consumed by get then delete": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return requestGetThenDelete{mutant{m}} },
		"ConsumeAuthorizationRequest/ConcurrentCallsOneWins",
	},
	"rotated tokens are hidden": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return hidesRotated{mutant{m}} },
		"RotateRefreshToken/Succeeds",
	},
	"save replaces a stored token": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return saveReplaces{mutant{m}} },
		"SaveTokens/StoredDigestIsConflict",
	},
	"revoke grant does nothing": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return revokeNothing{mutant{m}} },
		"RevokeGrant/DeletesTokensAndCodes",
	},
	"times kept to the second": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return secondsOnly{mutant{m}} },
		"SaveTokens/RoundTrip",
	},
	"context ignored": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return ignoresContext{mutant{m}} },
		"Context/CanceledIsAnError",
	},
	"client IDs matched without case": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return caseInsensitive{mutant{m}} },
		"RegisterClient/IDIsMatchedExactly",
	},
	"update creates a missing client": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return updateUpserts{mutant{m}} },
		"UpdateClient/MissingIsNotFound",
	},
	"update keeps the stored secret": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return updateKeepsSecret{mutant{m}} },
		"UpdateClient/ReplacesMetadataAndDigest",
	},
	"delete forgets only the client": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model {
			return &deletesOnlyTheClient{mutant: mutant{m}, deleted: make(map[string]bool)}
		},
		"DeleteClient/RemovesTheClientAndEverythingIssuedToIt",
	},
	"delete of a missing client succeeds": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return deleteMissingSucceeds{mutant{m}} },
		"DeleteClient/MissingIsNotFound",
	},
	"grant records outlive their revocation": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return newGrantCache(m, false) },
		"GrantStore/RevokeGrantDeletesIt",
	},
	"user grants listed without the user": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return newGrantCache(m, true) },
		"GrantStore/ListUserGrantsIsTheUsersOnly",
	},
	"grant with an empty ID accepted": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return emptyGrantIDAccepted{mutant{m}} },
		"GrantStore/SaveOfEmptyIDIsRefused",
	},
	"code with a zero digest stored": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return &zeroDigestCodeStored{mutant: mutant{m}} },
		"SaveAuthorizationCode/ZeroDigestIsRefused",
	},
	"tokens saved one at a time": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return tokensOneAtATime{mutant{m}} },
		"SaveTokens/ZeroDigestIsRefused",
	},
	"grant use fails on a concurrent use": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return grantUseSnapshot{mutant{m}} },
		"GrantStore/ConcurrentRecordGrantUsesAllLand",
	},
	"upstream replace ignores the version": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return replaceIgnoresVersion{mutant{m}} },
		"UpstreamTokenStore/ReplaceAtAnotherVersionIsConflict",
	},
	"upstream replace creates a missing entry": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return replaceUpserts{mutant{m}} },
		"UpstreamTokenStore/ReplaceOfUnknownIsNotFound",
	},
	"upstream consume reads then deletes": {
		func(m *mcpoauth.MemoryModel) mcpoauth.Model { return upstreamGetThenDelete{mutant{m}} },
		"UpstreamTokenStore/ConcurrentConsumesOneWins",
	},
}

// TestKitCatchesBrokenModels runs the kit, in a child process, against each
// mutant and checks that it fails, in the subtest of the broken clause. A kit
// that passed a broken model would certify nothing.
func TestKitCatchesBrokenModels(t *testing.T) {
	if os.Getenv(envMutant) != "" {
		t.Skip("in a child process")
	}
	for name, mt := range mutants {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.count=1")
			cmd.Env = append(os.Environ(), envMutant+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a model whose %s:\n%s", name, out)
			}
			if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) {
				t.Fatalf("running the kit against a model whose %s: %v", name, err)
			}
			if want := "--- FAIL: TestMutant/" + mt.catches + " "; !strings.Contains(string(out), want) {
				t.Fatalf("the kit did not fail where expected (%q):\n%s", want, out)
			}
		})
	}
}

// TestMutant runs the kit against the mutant named by MODELTEST_MUTANT, and
// is skipped otherwise.
func TestMutant(t *testing.T) {
	name := os.Getenv(envMutant)
	if name == "" {
		t.Skip("run by TestKitCatchesBrokenModels")
	}
	mt, ok := mutants[name]
	if !ok {
		t.Fatalf("unknown mutant %q", name)
	}
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model {
		m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
		t.Cleanup(func() { _ = m.Close() })
		return mt.model(m)
	})
}

type consumeIgnoresClient struct{ mutant }

func (m consumeIgnoresClient) ConsumeAuthorizationCode(ctx context.Context, code mcpoauth.Digest, _ string, issued ...*mcpoauth.Token) error {
	c, err := m.GetAuthorizationCode(ctx, code)
	if err != nil {
		return err
	}
	return m.MemoryModel.ConsumeAuthorizationCode(ctx, code, c.ClientID, issued...)
}

type usedBeforeClient struct{ mutant }

func (m usedBeforeClient) ConsumeAuthorizationCode(ctx context.Context, code mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
	if c, err := m.GetAuthorizationCode(ctx, code); err == nil && c.Used {
		return mcpoauth.ErrAlreadyUsed
	}
	return m.MemoryModel.ConsumeAuthorizationCode(ctx, code, clientID, issued...)
}

// readThenWrite redeems a code as a store without compare-and-set does:
// it reads Used, then writes, and trusts what it read.
type readThenWrite struct{ mutant }

func (m readThenWrite) ConsumeAuthorizationCode(ctx context.Context, code mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
	c, err := m.GetAuthorizationCode(ctx, code)
	if err != nil || c.ClientID != clientID {
		return mcpoauth.ErrNotFound
	}
	if c.Used {
		return mcpoauth.ErrAlreadyUsed
	}
	for range 3 {
		runtime.Gosched() // the window between the read and the write
	}
	if err := m.MemoryModel.ConsumeAuthorizationCode(ctx, code, clientID); err != nil && !errors.Is(err, mcpoauth.ErrAlreadyUsed) {
		return err
	}
	return m.SaveTokens(ctx, issued...)
}

type requestGetThenDelete struct{ mutant }

func (m requestGetThenDelete) ConsumeAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	return getThenDelete(ctx, id, m.GetAuthorizationRequest, m.MemoryModel.ConsumeAuthorizationRequest)
}

// getThenDelete consumes a record as a store without an atomic take does:
// it reads the record, then deletes it (with del, the real consume), and
// returns what it read, whether or not another caller took it in between.
func getThenDelete[K, R any](ctx context.Context, id K, get, del func(context.Context, K) (*R, error)) (*R, error) {
	r, err := get(ctx, id)
	if err != nil {
		return nil, err
	}
	for range 3 {
		runtime.Gosched() // the window between the read and the delete
	}
	_, _ = del(ctx, id)
	return r, nil
}

type hidesRotated struct{ mutant }

func (m hidesRotated) GetToken(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.Token, error) {
	t, err := m.MemoryModel.GetToken(ctx, d)
	if err == nil && t.Rotated() {
		return nil, mcpoauth.ErrNotFound
	}
	return t, err
}

type saveReplaces struct{ mutant }

func (m saveReplaces) SaveTokens(ctx context.Context, tokens ...*mcpoauth.Token) error {
	for _, t := range tokens {
		if old, err := m.MemoryModel.GetToken(ctx, t.Digest); err == nil {
			_, _ = m.RevokeToken(ctx, t.Digest, old.ClientID)
		}
	}
	return m.MemoryModel.SaveTokens(ctx, tokens...)
}

type revokeNothing struct{ mutant }

func (revokeNothing) RevokeGrant(context.Context, string) error { return nil }

type secondsOnly struct{ mutant }

func (m secondsOnly) GetToken(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.Token, error) {
	t, err := m.MemoryModel.GetToken(ctx, d)
	if err != nil {
		return nil, err
	}
	c := *t
	c.IssuedAt, c.ExpiresAt = c.IssuedAt.Truncate(time.Second), c.ExpiresAt.Truncate(time.Second)
	return &c, nil
}

type ignoresContext struct{ mutant }

func (m ignoresContext) GetToken(_ context.Context, d mcpoauth.Digest) (*mcpoauth.Token, error) {
	return m.MemoryModel.GetToken(context.Background(), d)
}

type caseInsensitive struct{ mutant }

func (m caseInsensitive) GetClient(ctx context.Context, id string) (*mcpoauth.Client, error) {
	return m.MemoryModel.GetClient(ctx, strings.ToLower(id))
}

type updateUpserts struct{ mutant }

func (m updateUpserts) UpdateClient(ctx context.Context, c *mcpoauth.Client) error {
	if err := m.MemoryModel.UpdateClient(ctx, c); !errors.Is(err, mcpoauth.ErrNotFound) {
		return err
	}
	return m.RegisterClient(ctx, c)
}

// updateKeepsSecret updates the metadata and leaves the secret columns
// alone, as an UPDATE that lists too few columns does.
type updateKeepsSecret struct{ mutant }

func (m updateKeepsSecret) UpdateClient(ctx context.Context, c *mcpoauth.Client) error {
	stored, err := m.GetClient(ctx, c.ID)
	if err != nil {
		return err
	}
	next := *c
	next.SecretDigest, next.SecretExpiresAt = stored.SecretDigest, stored.SecretExpiresAt
	return m.MemoryModel.UpdateClient(ctx, &next)
}

// deletesOnlyTheClient marks a deleted client as gone and keeps everything
// issued to it, as a soft delete of the client row alone does.
type deletesOnlyTheClient struct {
	mutant
	mu      sync.Mutex
	deleted map[string]bool
}

func (m *deletesOnlyTheClient) GetClient(ctx context.Context, id string) (*mcpoauth.Client, error) {
	m.mu.Lock()
	gone := m.deleted[id]
	m.mu.Unlock()
	if gone {
		return nil, mcpoauth.ErrNotFound
	}
	return m.MemoryModel.GetClient(ctx, id)
}

func (m *deletesOnlyTheClient) DeleteClient(ctx context.Context, id string) error {
	if _, err := m.GetClient(ctx, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted[id] = true
	return nil
}

type deleteMissingSucceeds struct{ mutant }

func (m deleteMissingSucceeds) DeleteClient(ctx context.Context, id string) error {
	if err := m.MemoryModel.DeleteClient(ctx, id); !errors.Is(err, mcpoauth.ErrNotFound) {
		return err
	}
	return nil
}

// grantCache keeps its own copy of every grant saved, as a cache in front
// of a store that nothing invalidates: GetGrant answers from it when the
// store does not, and, with everyone set, ListUserGrants lists all of it.
type grantCache struct {
	mutant
	everyone bool
	mu       sync.Mutex
	grants   map[string]*mcpoauth.Grant
}

func newGrantCache(m *mcpoauth.MemoryModel, everyone bool) *grantCache {
	return &grantCache{mutant: mutant{m}, everyone: everyone, grants: make(map[string]*mcpoauth.Grant)}
}

func (m *grantCache) SaveGrant(ctx context.Context, g *mcpoauth.Grant) error {
	if err := m.MemoryModel.SaveGrant(ctx, g); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants[g.ID] = g
	return nil
}

func (m *grantCache) GetGrant(ctx context.Context, id string) (*mcpoauth.Grant, error) {
	g, err := m.MemoryModel.GetGrant(ctx, id)
	if m.everyone || !errors.Is(err, mcpoauth.ErrNotFound) {
		return g, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.grants[id]; c != nil {
		return c, nil
	}
	return g, err
}

func (m *grantCache) ListUserGrants(ctx context.Context, userID string) ([]*mcpoauth.Grant, error) {
	if !m.everyone {
		return m.MemoryModel.ListUserGrants(ctx, userID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*mcpoauth.Grant
	for _, g := range m.grants {
		out = append(out, g)
	}
	return out, nil
}

type emptyGrantIDAccepted struct{ mutant }

func (m emptyGrantIDAccepted) SaveGrant(ctx context.Context, g *mcpoauth.Grant) error {
	if g != nil && g.ID == "" {
		return nil // a store whose key column takes ''
	}
	return m.MemoryModel.SaveGrant(ctx, g)
}

// zeroDigestCodeStored stores a code whose digest is zero as any other, as
// a store whose key column takes 32 zero bytes does.
type zeroDigestCodeStored struct {
	mutant
	mu   sync.Mutex
	zero *mcpoauth.AuthorizationCode
}

func (m *zeroDigestCodeStored) SaveAuthorizationCode(ctx context.Context, c *mcpoauth.AuthorizationCode) error {
	if c == nil || !c.Digest.IsZero() {
		return m.MemoryModel.SaveAuthorizationCode(ctx, c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.zero = c
	return nil
}

func (m *zeroDigestCodeStored) GetAuthorizationCode(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.AuthorizationCode, error) {
	m.mu.Lock()
	zero := m.zero
	m.mu.Unlock()
	if d.IsZero() && zero != nil {
		return zero, nil
	}
	return m.MemoryModel.GetAuthorizationCode(ctx, d)
}

// tokensOneAtATime saves a batch of tokens one by one, as a store without
// a transaction around the batch does: it refuses a token with a zero
// digest, but keeps the tokens saved before it.
type tokensOneAtATime struct{ mutant }

func (m tokensOneAtATime) SaveTokens(ctx context.Context, tokens ...*mcpoauth.Token) error {
	for _, t := range tokens {
		if err := m.MemoryModel.SaveTokens(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// grantUseSnapshot records a use as an UPDATE at REPEATABLE READ does: it
// fails if another use changed the grant after it read it (a
// serialization failure), so that of concurrent uses only some land.
type grantUseSnapshot struct{ mutant }

func (m grantUseSnapshot) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	seen, err := m.GetGrant(ctx, grantID)
	if err != nil {
		return err
	}
	for range 3 {
		runtime.Gosched() // the window between the snapshot and the write
	}
	if now, err := m.GetGrant(ctx, grantID); err == nil && !now.LastUsedAt.Equal(seen.LastUsedAt) {
		return errors.New("could not serialize access due to concurrent update")
	}
	return m.MemoryModel.RecordGrantUse(ctx, grantID, at)
}

type replaceIgnoresVersion struct{ mutant }

func (m replaceIgnoresVersion) ReplaceUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken, _ int64) error {
	old, err := m.GetUpstreamToken(ctx, t.ID)
	if err != nil {
		return err
	}
	return m.MemoryModel.ReplaceUpstreamToken(ctx, t, old.Version)
}

type replaceUpserts struct{ mutant }

func (m replaceUpserts) ReplaceUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken, version int64) error {
	if err := m.MemoryModel.ReplaceUpstreamToken(ctx, t, version); !errors.Is(err, mcpoauth.ErrNotFound) {
		return err
	}
	return m.SaveUpstreamToken(ctx, t)
}

type upstreamGetThenDelete struct{ mutant }

func (m upstreamGetThenDelete) ConsumeUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	return getThenDelete(ctx, id, m.GetUpstreamToken, m.MemoryModel.ConsumeUpstreamToken)
}
