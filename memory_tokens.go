package mcpoauth

import (
	"crypto/rand"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// tokenIndex is an open-addressing hash table of uint32 references to
// token slots (see tokenSlot), with linear probing, built for the
// MemoryModel's token store, which must hold a million live tokens in
// little memory, find one without allocating, and keep the garbage
// collector away: the table holds no pointers, so the collector never scans
// it.
//
// A slot costs 5 bytes: the reference, and a one-byte tag (0 for an empty
// slot, else 8 bits of the entry's hash) that rules out almost every
// non-matching slot without reading the token. The table does not know its
// keys: callers pass the hash of the key they look for, test candidates
// themselves, and pass a function that recomputes an entry's hash for the
// operations that move entries (growth, deletion). Two kinds of table use
// it:
//
//   - by digest: each shard's tokens, keyed by the digest of the slot a
//     reference names. The digest is hashed rather than used as is: the
//     server's digests are uniform, but a Model also serves callers with
//     digests of their own making (the conformance kit counts in them),
//     which must not pile up in one probe run.
//   - by grant: a multimap of the tokens of grants with few tokens, keyed by
//     the grant ID (maphash with a per-process seed, so grant IDs cannot be
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
	tags []uint8
	refs []uint32
	n    int
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

// home is the first slot probed for a hash: its high 32 bits scaled to the
// table size (Lemire's multiply-shift; the size need not be a power of two).
func (x *tokenIndex) home(h uint64) int {
	return int((h >> 32) * uint64(len(x.refs)) >> 32)
}

// next is the slot after i, wrapping.
func (x *tokenIndex) next(i int) int {
	if i++; i == len(x.refs) {
		return 0
	}
	return i
}

// run calls fn with the position and reference of each entry in the probe
// run of hash h whose tag matches h's, until fn returns false. Every entry
// whose key hashes to h is among them; the caller tells the others apart.
// fn must not change the table.
func (x *tokenIndex) run(h uint64, fn func(pos int, ref uint32) bool) {
	if x.n == 0 {
		return
	}
	tag := tagOf(h)
	for i := x.home(h); x.tags[i] != 0; i = x.next(i) {
		if x.tags[i] == tag && !fn(i, x.refs[i]) {
			return
		}
	}
}

// indexOf returns the position that holds ref, whose key hashes to h, or -1.
func (x *tokenIndex) indexOf(h uint64, ref uint32) int {
	pos := -1
	x.run(h, func(i int, r uint32) bool {
		if r == ref {
			pos = i
			return false
		}
		return true
	})
	return pos
}

// needsGrowth reports whether inserting one more entry needs a larger
// table.
func (x *tokenIndex) needsGrowth() bool { return (x.n+1)*5 > len(x.refs)*4 }

// grown returns a copy of x large enough for one more entry, leaving x
// unchanged, so a table that readers share can be rebuilt outside their lock
// and swapped in. hashOf gives the hash of an entry's key.
func (x *tokenIndex) grown(hashOf func(ref uint32) uint64) tokenIndex {
	size := max(8, len(x.refs)+len(x.refs)/2)
	for (x.n+1)*5 > size*4 {
		size += size / 2
	}
	y := tokenIndex{tags: make([]uint8, size), refs: make([]uint32, size)}
	for i, r := range x.refs {
		if x.tags[i] != 0 {
			y.put(hashOf(r), r)
		}
	}
	return y
}

// insert adds ref, whose key hashes to h, growing the table if needed.
func (x *tokenIndex) insert(h uint64, ref uint32, hashOf func(ref uint32) uint64) {
	if x.needsGrowth() {
		*x = x.grown(hashOf)
	}
	x.put(h, ref)
}

// put stores ref in the first empty slot of its probe sequence; the table
// has room.
func (x *tokenIndex) put(h uint64, ref uint32) {
	i := x.home(h)
	for x.tags[i] != 0 {
		i = x.next(i)
	}
	x.tags[i], x.refs[i] = tagOf(h), ref
	x.n++
}

// removeAt empties slot i and shifts back the entries after it that may
// move closer to their home slot (backward-shift deletion), so that every
// entry stays reachable from its home without tombstones.
func (x *tokenIndex) removeAt(i int, hashOf func(ref uint32) uint64) {
	x.tags[i], x.refs[i] = 0, 0
	x.n--
	for j := x.next(i); x.tags[j] != 0; j = x.next(j) {
		k := x.home(hashOf(x.refs[j]))
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		x.tags[i], x.refs[i] = x.tags[j], x.refs[j]
		x.tags[j], x.refs[j] = 0, 0
		i = j
	}
}

// remove removes ref, whose key hashes to h, reporting whether the table
// held it.
func (x *tokenIndex) remove(h uint64, ref uint32, hashOf func(ref uint32) uint64) bool {
	i := x.indexOf(h, ref)
	if i < 0 {
		return false
	}
	x.removeAt(i, hashOf)
	return true
}

// all calls fn with every entry, in slot order. fn must not change the
// table.
func (x *tokenIndex) all(fn func(ref uint32)) {
	for i, r := range x.refs {
		if x.tags[i] != 0 {
			fn(r)
		}
	}
}
