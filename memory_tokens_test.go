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
// inserts and deletions and compares every lookup with a Go map. The grant
// table holds up to hundreds of tokens per key in a few dozen keys, so its
// probe runs are long, collide and wrap around the end of the table: the
// cases backward-shift deletion must get right.
func TestTokenIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// digest gives structured digests, a counter in one word, as the
	// conformance kit makes them.
	digest := func(i int) Digest {
		var d Digest
		binary.BigEndian.PutUint64(d[:8], uint64(i))
		return d
	}
	// Entry ref has digest digests[ref] and grant grantOf[ref].
	var digests []Digest
	var grantOf []string
	digestOf := func(ref uint32) uint64 { return digestHash(digests[ref]) }
	grantHashOfRef := func(ref uint32) uint64 { return grantHash(grantOf[ref]) }
	get := func(x *tokenIndex, d Digest) int64 {
		found := int64(-1)
		x.run(digestHash(d), func(_ int, r uint32) bool {
			if digests[r] == d {
				found = int64(r)
				return false
			}
			return true
		})
		return found
	}
	var byDigest, byGrant tokenIndex
	want := map[Digest]uint32{}
	grants := map[string]map[uint32]bool{}
	check := func() {
		t.Helper()
		require.Equal(t, len(want), byDigest.n)
		require.Equal(t, len(want), byGrant.n)
		for d, ref := range want {
			require.Equal(t, int64(ref), get(&byDigest, d))
			require.GreaterOrEqual(t, byGrant.indexOf(grantHashOfRef(ref), ref), 0)
		}
		for g, set := range grants {
			got := map[uint32]bool{}
			byGrant.run(grantHash(g), func(_ int, r uint32) bool {
				if grantOf[r] == g {
					got[r] = true
				}
				return true
			})
			require.Equal(t, set, got, "grant %s", g)
		}
	}
	for step := range 20_000 {
		if rng.IntN(10) < 6 || len(want) == 0 {
			ref := uint32(len(digests))
			g := fmt.Sprintf("g%d", rng.IntN(40))
			digests, grantOf = append(digests, digest(int(ref)+1)), append(grantOf, g)
			byDigest.insert(digestOf(ref), ref, digestOf)
			byGrant.insert(grantHash(g), ref, grantHashOfRef)
			want[digests[ref]] = ref
			if grants[g] == nil {
				grants[g] = map[uint32]bool{}
			}
			grants[g][ref] = true
		} else {
			for d, ref := range want {
				require.True(t, byDigest.remove(digestOf(ref), ref, digestOf))
				require.True(t, byGrant.remove(grantHashOfRef(ref), ref, grantHashOfRef))
				delete(want, d)
				delete(grants[grantOf[ref]], ref)
				require.Negative(t, get(&byDigest, d))
				require.Negative(t, byGrant.indexOf(grantHashOfRef(ref), ref))
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
	require.Negative(t, get(&byDigest, missing))
	require.Negative(t, get(&tokenIndex{}, missing))
}

// TestTokenIndexSpreadsStructuredDigests guards the digest hash: digests
// that differ only in a counter, in any of their words, must not share probe
// runs (with the digest's raw bytes as the hash, the conformance kit's
// digests made every lookup a scan of the whole table).
func TestTokenIndexSpreadsStructuredDigests(t *testing.T) {
	for word := range 4 {
		x := tokenIndex{}
		digests := make([]Digest, 50_000)
		hashOf := func(ref uint32) uint64 { return digestHash(digests[ref]) }
		for i := range digests {
			binary.BigEndian.PutUint64(digests[i][8*word:], uint64(i))
			x.insert(hashOf(uint32(i)), uint32(i), hashOf)
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

// TestMemoryModelTokenSlotsRoundTrip stores tokens whose fields take every
// form a slot encodes differently (zero and non-UTC times, nil and empty
// scopes, empty, short and long grant IDs, strings shared with other
// tokens) and reads each back equal, then deletes them and checks that the
// shards' strings were forgotten with them.
func TestMemoryModelTokenSlotsRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := newTestMemoryModel(t)
	zone := time.FixedZone("far", 13*3600+45*60)
	long := "grant-" + newDigest().String() // 70 characters: interned
	var tokens []*Token
	for i, g := range []string{"", "g", "exactly-24-characters-xx", long, long} {
		tok := memToken(AccessToken, "client", g, memT0.Add(time.Hour).In(zone))
		tok.IssuedAt = time.Now() // monotonic reading, local zone
		tok.ExpiresAt = tok.ExpiresAt.Add(time.Duration(i) * time.Nanosecond)
		switch i {
		case 0:
			tok.Scopes, tok.UserID, tok.GrantExpiresAt = nil, "", time.Time{}
		case 1:
			tok.Scopes = []string{}
		case 2:
			tok.Scopes = []string{"a b", "", "c"}
			tok.RotatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
		case 3:
			tok.Scopes = []string{"a", "b c"} // must not meet case 2's
		}
		tokens = append(tokens, tok)
	}
	require.NoError(t, m.SaveTokens(ctx, tokens...))
	requireTokenPresent(t, m, tokens...)
	requireMemoryInvariants(t, m)
	got, err := m.GetToken(ctx, tokens[0].Digest)
	require.NoError(t, err)
	require.Nil(t, got.Scopes)
	require.True(t, got.GrantExpiresAt.IsZero())
	got, err = m.GetToken(ctx, tokens[1].Digest)
	require.NoError(t, err)
	require.NotNil(t, got.Scopes)

	require.NoError(t, m.RevokeGrant(ctx, long))
	requireTokenAbsent(t, m, tokens[3:]...)
	requireTokenPresent(t, m, tokens[:3]...)
	requireMemoryInvariants(t, m)
	m.Sweep(memT0.Add(2 * time.Hour))
	require.Zero(t, m.Stats().Tokens)
	requireMemoryInvariants(t, m)
	for i := range m.shards {
		s := &m.shards[i]
		require.Empty(t, s.strs.strs)
		require.Empty(t, s.strs.scopes)
	}
}
