package mcpoauth

import (
	"crypto/rand"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// tokenIndex is an open-addressing hash table of *Token with linear
// probing, built for the MemoryModel's token store, which must hold a million
// live tokens in little memory and find one without allocating.
//
// A slot costs 9 bytes: the pointer, and a one-byte tag (0 for an empty slot,
// else 8 bits of the entry's hash) that rules out almost every non-matching
// slot without dereferencing it. Go's map would cost a 32-byte digest key
// plus the pointer per slot, and the grant index a map per grant.
//
// Two kinds of table share the code:
//
//   - by digest: each shard's tokens, keyed by Token.Digest (unique). The
//     digest is hashed rather than used as is: the server's digests are
//     uniform, but a Model also serves callers with digests of their own
//     making (the conformance kit counts in them), which must not pile up in
//     one probe run.
//   - by grant: a multimap of the tokens of grants with few tokens, keyed by
//     Token.GrantID (maphash with a per-process seed, so grant IDs cannot be
//     chosen to collide). With linear probing every entry of a key lies in
//     the run of occupied slots that starts at the key's home slot, so all of
//     a grant's tokens are found by scanning that run.
//
// The table never fills beyond 4/5 of its slots, so every probe sequence ends
// at an empty slot; it grows by half when it would. Deletion shifts the
// following entries back (no tombstones), so lookups never slow down with
// churn. A tokenIndex is not safe for concurrent use: the MemoryModel guards
// it with its locks.
type tokenIndex struct {
	tags    []uint8
	slots   []*Token
	n       int
	byGrant bool
}

// grantSeed seeds the grant ID hash.
var grantSeed = maphash.MakeSeed()

// digestSeed seeds the digest hash, per process.
var digestSeed = func() (s [4]uint64) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	for i := range s {
		s[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return s
}()

// digestHash hashes a digest: wyhash's 128-bit multiply-fold of its four
// words, each mixed with a secret first, then MurmurHash3's 64-bit
// finaliser. A few nanoseconds, no allocation (hash/maphash.Bytes costs
// several times as much). Without the finaliser, digests differing only in
// a counter in one word met, for some seeds, in probe runs ten times the
// usual length: the fold leaves the bits that pick the home slot too
// little mixed when the other word of its pair is fixed.
func digestHash(d Digest) uint64 { return digestHashWith(&digestSeed, d) }

// digestHashWith is digestHash under a given seed (tests try many).
func digestHashWith(seed *[4]uint64, d Digest) uint64 {
	mix := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		return hi ^ lo
	}
	le := binary.LittleEndian
	h := mix(le.Uint64(d[0:])^seed[0], le.Uint64(d[8:])^seed[1]) ^
		mix(le.Uint64(d[16:])^seed[2], le.Uint64(d[24:])^seed[3])
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

func grantHash(grantID string) uint64 { return maphash.String(grantSeed, grantID) }

// tagOf is the non-zero one-byte tag of a hash. It uses bits 0-7; the shard
// is picked by bits 8-13, the home slot by bits 32-63.
func tagOf(h uint64) uint8 {
	if t := uint8(h); t != 0 {
		return t
	}
	return 1
}

// hashOf is the hash of an entry.
func (x *tokenIndex) hashOf(t *Token) uint64 {
	if x.byGrant {
		return grantHash(t.GrantID)
	}
	return digestHash(t.Digest)
}

// home is the first slot probed for a hash: its high 32 bits scaled to the
// table size (Lemire's multiply-shift; the size need not be a power of two).
func (x *tokenIndex) home(h uint64) int {
	return int((h >> 32) * uint64(len(x.slots)) >> 32)
}

// next is the slot after i, wrapping.
func (x *tokenIndex) next(i int) int {
	if i++; i == len(x.slots) {
		return 0
	}
	return i
}

// get returns the token with digest d, or nil. It does not allocate. For
// tables by digest.
func (x *tokenIndex) get(d Digest) *Token {
	if i := x.indexOfDigest(d); i >= 0 {
		return x.slots[i]
	}
	return nil
}

// indexOfDigest returns the slot of the token with digest d, or -1. For
// tables by digest.
func (x *tokenIndex) indexOfDigest(d Digest) int { return x.indexOfHashed(digestHash(d), d) }

// indexOfHashed is indexOfDigest for a caller that hashed d already (to
// pick the shard).
func (x *tokenIndex) indexOfHashed(h uint64, d Digest) int {
	if x.n == 0 {
		return -1
	}
	tag := tagOf(h)
	for i := x.home(h); ; i = x.next(i) {
		switch x.tags[i] {
		case 0:
			return -1
		case tag:
			if x.slots[i].Digest == d {
				return i
			}
		}
	}
}

// indexOf returns the slot that holds exactly t, or -1.
func (x *tokenIndex) indexOf(t *Token) int {
	if x.n == 0 {
		return -1
	}
	h := x.hashOf(t)
	tag := tagOf(h)
	for i := x.home(h); ; i = x.next(i) {
		switch x.tags[i] {
		case 0:
			return -1
		case tag:
			if x.slots[i] == t {
				return i
			}
		}
	}
}

// grant calls fn with each token of grantID until fn returns false. fn must
// not change the table. For tables by grant.
func (x *tokenIndex) grant(grantID string, fn func(t *Token) bool) {
	if x.n == 0 {
		return
	}
	h := grantHash(grantID)
	tag := tagOf(h)
	for i := x.home(h); x.tags[i] != 0; i = x.next(i) {
		if x.tags[i] == tag && x.slots[i].GrantID == grantID && !fn(x.slots[i]) {
			return
		}
	}
}

// countGrant returns how many tokens of grantID the table holds, up to
// limit. For tables by grant.
func (x *tokenIndex) countGrant(grantID string, limit int) int {
	n := 0
	x.grant(grantID, func(*Token) bool {
		n++
		return n < limit
	})
	return n
}

// needsGrowth reports whether inserting one more entry needs a larger
// table.
func (x *tokenIndex) needsGrowth() bool { return (x.n+1)*5 > len(x.slots)*4 }

// grown returns a copy of x large enough for one more entry, leaving x
// unchanged, so a table that readers share can be rebuilt outside their lock
// and swapped in.
func (x *tokenIndex) grown() tokenIndex {
	size := max(8, len(x.slots)+len(x.slots)/2)
	for (x.n+1)*5 > size*4 {
		size += size / 2
	}
	y := tokenIndex{tags: make([]uint8, size), slots: make([]*Token, size), byGrant: x.byGrant}
	for i, t := range x.slots {
		if x.tags[i] != 0 {
			y.put(x.hashOf(t), t)
		}
	}
	return y
}

// insert adds t, which the table must not hold yet. A table by digest must
// not hold its digest either.
func (x *tokenIndex) insert(t *Token) {
	if x.needsGrowth() {
		*x = x.grown()
	}
	x.put(x.hashOf(t), t)
}

// put stores t in the first empty slot of its probe sequence; the table has
// room.
func (x *tokenIndex) put(h uint64, t *Token) {
	i := x.home(h)
	for x.tags[i] != 0 {
		i = x.next(i)
	}
	x.tags[i], x.slots[i] = tagOf(h), t
	x.n++
}

// set replaces the entry of slot i by t, which has the same key.
func (x *tokenIndex) set(i int, t *Token) { x.slots[i] = t }

// removeAt empties slot i and shifts back the entries after it that may
// move closer to their home slot (backward-shift deletion), so that every
// entry stays reachable from its home without tombstones.
func (x *tokenIndex) removeAt(i int) {
	x.tags[i], x.slots[i] = 0, nil
	x.n--
	for j := x.next(i); x.tags[j] != 0; j = x.next(j) {
		k := x.home(x.hashOf(x.slots[j]))
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		x.tags[i], x.slots[i] = x.tags[j], x.slots[j]
		x.tags[j], x.slots[j] = 0, nil
		i = j
	}
}

// remove removes exactly t, reporting whether the table held it.
func (x *tokenIndex) remove(t *Token) bool {
	i := x.indexOf(t)
	if i < 0 {
		return false
	}
	x.removeAt(i)
	return true
}

// all calls fn with every entry, in slot order. fn must not change the
// table.
func (x *tokenIndex) all(fn func(t *Token)) {
	for i, t := range x.slots {
		if x.tags[i] != 0 {
			fn(t)
		}
	}
}
