package mcpoauth

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTokenIndexMatchesMap drives both kinds of tokenIndex with random
// inserts, replacements and deletions and compares every lookup with a Go
// map. The grant table holds up to hundreds of tokens per key in a few
// dozen keys, so its probe runs are long, collide and wrap around the end of
// the table: the cases backward-shift deletion must get right.
func TestTokenIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// digest gives structured digests, a counter in one word, as the
	// conformance kit makes them.
	digest := func(i int) Digest {
		var d Digest
		binary.BigEndian.PutUint64(d[:8], uint64(i))
		return d
	}
	byDigest := tokenIndex{}
	byGrant := tokenIndex{byGrant: true}
	want := map[Digest]*Token{}
	grants := map[string]map[*Token]bool{}
	check := func() {
		t.Helper()
		require.Equal(t, len(want), byDigest.n)
		require.Equal(t, len(want), byGrant.n)
		for d, tok := range want {
			require.Same(t, tok, byDigest.get(d))
			require.GreaterOrEqual(t, byGrant.indexOf(tok), 0)
		}
		for g, set := range grants {
			got := map[*Token]bool{}
			byGrant.grant(g, func(tok *Token) bool {
				got[tok] = true
				return true
			})
			require.Equal(t, set, got, "grant %s", g)
			require.Equal(t, min(len(set), 3), byGrant.countGrant(g, 3))
		}
	}
	next := 0
	for step := range 20_000 {
		switch r := rng.IntN(10); {
		case r < 5 || len(want) == 0:
			next++
			g := fmt.Sprintf("g%d", rng.IntN(40))
			tok := &Token{Digest: digest(next), GrantID: g}
			byDigest.insert(tok)
			byGrant.insert(tok)
			want[tok.Digest] = tok
			if grants[g] == nil {
				grants[g] = map[*Token]bool{}
			}
			grants[g][tok] = true
		case r < 6:
			// Replace a token by a copy, as RotateRefreshToken does.
			for d, tok := range want {
				cp := *tok
				byDigest.set(byDigest.indexOfDigest(d), &cp)
				byGrant.set(byGrant.indexOf(tok), &cp)
				want[d] = &cp
				delete(grants[tok.GrantID], tok)
				grants[tok.GrantID][&cp] = true
				break
			}
		default:
			for d, tok := range want {
				byDigest.removeAt(byDigest.indexOfDigest(d))
				byGrant.removeAt(byGrant.indexOf(tok))
				delete(want, d)
				delete(grants[tok.GrantID], tok)
				require.Nil(t, byDigest.get(d))
				require.Negative(t, byGrant.indexOf(tok))
				break
			}
		}
		if step%97 == 0 {
			check()
		}
	}
	check()
	var missing Digest
	missing[0] = 0xff
	require.Nil(t, byDigest.get(missing))
	require.Nil(t, (&tokenIndex{}).get(missing))
}

// TestTokenIndexSpreadsStructuredDigests guards the digest hash: digests
// that differ only in a counter, in any of their words, must not share probe
// runs (with the digest's raw bytes as the hash, the conformance kit's
// digests made every lookup a scan of the whole table).
func TestTokenIndexSpreadsStructuredDigests(t *testing.T) {
	for word := range 4 {
		x := tokenIndex{}
		for i := range 50_000 {
			var d Digest
			binary.BigEndian.PutUint64(d[8*word:], uint64(i))
			x.insert(&Token{Digest: d})
		}
		longest, run := 0, 0
		for i := range 2 * len(x.tags) {
			if x.tags[i%len(x.tags)] != 0 {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		// At load ≤ 0.8 the longest run of a uniform hash is a few dozen.
		require.Less(t, longest, 200, "counter in word %d", word)
	}
}

// TestDigestHashSpreadsCountersUnderEverySeed guards the digest hash's
// finaliser: for every seed, digests that differ only in a counter in one
// word must spread like random ones. Without it, about one seed in four
// put such digests into probe runs of several hundred slots at load 0.57.
// Linear probing is simulated on the home slots the table would compute.
func TestDigestHashSpreadsCountersUnderEverySeed(t *testing.T) {
	const n, size = 50_000, 88_258 // the table's size when it holds n
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 16 {
		seed := [4]uint64{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		for word := range 4 {
			used := make([]bool, size)
			for i := range n {
				var d Digest
				binary.BigEndian.PutUint64(d[8*word:], uint64(i))
				h := digestHashWith(&seed, d)
				j := int((h >> 32) * size >> 32)
				for used[j] {
					j = (j + 1) % size
				}
				used[j] = true
			}
			longest, run := 0, 0
			for i := range 2 * size {
				if used[i%size] {
					run++
					longest = max(longest, run)
				} else {
					run = 0
				}
			}
			// Random digests give a longest run of 40-80 here.
			require.Less(t, longest, 200, "seed %d, counter in word %d", trial, word)
		}
	}
}

// TestMemoryModelBigGrant follows a grant past bigGrantTokens tokens (a
// client that refreshes often): its tokens move to a map of their own, and
// rotation, revocation of single tokens, sweeping and revoking the grant keep
// the index exact.
func TestMemoryModelBigGrant(t *testing.T) {
	ctx := context.Background()
	m := newTestMemoryModel(t)
	other := memToken(AccessToken, "client", "other", memT0.Add(time.Hour))
	require.NoError(t, m.SaveTokens(ctx, other))
	refresh := memToken(RefreshToken, "client", "g", memT0.Add(time.Hour))
	require.NoError(t, m.SaveTokens(ctx, refresh))
	var all []*Token
	for i := range 3 * bigGrantTokens {
		// Each rotation keeps the used refresh token; half the access
		// tokens expire early.
		exp := memT0.Add(time.Hour)
		if i%2 == 0 {
			exp = memT0.Add(time.Minute)
		}
		access := memToken(AccessToken, "client", "g", exp)
		next := memToken(RefreshToken, "client", "g", memT0.Add(time.Hour))
		require.NoError(t, m.RotateRefreshToken(ctx, refresh.Digest, "client", memT0, time.Time{}, access, next))
		all = append(all, access)
		refresh = next
		requireMemoryInvariants(t, m)
	}
	m.mu.RLock()
	require.Contains(t, m.bigGrants, "g")
	m.mu.RUnlock()
	require.Equal(t, 2, m.Stats().Grants)

	_, err := m.RevokeToken(ctx, all[1].Digest, "client")
	require.NoError(t, err)
	requireMemoryInvariants(t, m)
	m.Sweep(memT0.Add(30 * time.Minute))
	requireMemoryInvariants(t, m)
	require.Equal(t, 1+1+3*bigGrantTokens+3*bigGrantTokens/2-1, m.Stats().Tokens)

	require.NoError(t, m.RevokeGrant(ctx, "g"))
	requireMemoryInvariants(t, m)
	require.Equal(t, MemoryStats{Tokens: 1, Grants: 1, RevokedGrants: 1}, m.Stats())
	requireTokenPresent(t, m, other)
	requireTokenAbsent(t, m, append(all, refresh)...)
}
