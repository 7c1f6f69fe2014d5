package mcpoauth

import (
	"encoding/binary"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// The MemoryModel keeps its tokens where the garbage collector does not look:
// each token is a fixed-size tokenSlot without pointers, in chunks of slots
// without pointers, found through tokenIndex tables without pointers. A
// collection marks a few thousand chunk pointers and the small tables of
// strings below, whatever the number of tokens, so that a million live tokens
// cost the collector (and every request that allocates) about what a
// thousand do. The strings a token names (client, user, resource, scopes)
// repeat across the tokens of a client or a user: each shard keeps one copy
// of each, counted, in its internTable, and a slot holds their ids. A grant
// ID, unique to a grant and so nearly to a token, is kept in the slot itself
// when it is short enough, as the server's are (22 characters).
//
// GetToken builds the *Token a caller gets from the slot, in one allocation:
// the Model contract lets records be shared and read-only, not permanent.

// The times of a token, as indexes of tokenSlot.sec and nsec.
const (
	slotIssuedAt = iota
	slotExpiresAt
	slotGrantExpiresAt
	slotRotatedAt
	slotTimes
)

// slotGrantLen is the longest grant ID a slot holds itself; a longer one is
// interned. The server's grant IDs are 22 characters (16 random bytes,
// base64url), the conformance kit's 22 as well.
const slotGrantLen = 24

// tokenSlot is a stored token, without pointers: 128 bytes. The DPoP key
// thumbprint (RFC 9449 §6, the token's cnf.jkt) is interned like the other
// strings: the tokens of one client key share it.
type tokenSlot struct {
	digest Digest
	// sec and nsec are the token's times as Unix seconds and nanoseconds
	// (a zero time.Time too, which Unix maps to year 1), so that every
	// time.Time survives, its instant exact; it comes back in UTC.
	sec  [slotTimes]int64
	nsec [slotTimes]uint32
	// Ids in the shard's internTable; 0 is the empty string, or nil
	// scopes. jkt is the DPoP key thumbprint (RFC 9449 §6): tokens of one
	// client key share it.
	client, user, resource, scopes, jkt uint32
	kind                                TokenKind
	live                                bool
	// grantLen is the length of the grant ID held in grant, or
	// grantInterned when the ID is longer than slotGrantLen: grant then
	// holds its id in the internTable (see grantLong).
	grantLen uint8
	grant    [slotGrantLen]byte
}

// grantInterned as a slot's grantLen says its grant ID is interned.
const grantInterned = 0xff

// grantLong returns the interned id of the slot's grant ID, or 0 when the
// slot holds the ID itself.
func (sl *tokenSlot) grantLong() uint32 {
	if sl.grantLen != grantInterned {
		return 0
	}
	return binary.LittleEndian.Uint32(sl.grant[:4])
}

// setGrantLong makes the slot's grant ID the interned id.
func (sl *tokenSlot) setGrantLong(id uint32) {
	sl.grantLen = grantInterned
	binary.LittleEndian.PutUint32(sl.grant[:4], id)
}

// Compile-time check that a slot stays 128 bytes (a change of size is a
// change of the per-token cost: update the docs).
var _ [128 - unsafe.Sizeof(tokenSlot{})]byte
var _ [unsafe.Sizeof(tokenSlot{}) - 128]byte

func (sl *tokenSlot) time(i int) time.Time {
	return time.Unix(sl.sec[i], int64(sl.nsec[i])).UTC()
}

func (sl *tokenSlot) setTime(i int, t time.Time) {
	sl.sec[i], sl.nsec[i] = t.Unix(), uint32(t.Nanosecond())
}

// before reports whether time i of the slot is before t, as
// slot.time(i).Before(t) does, without building a time.Time.
func (sl *tokenSlot) before(i int, sec int64, nsec uint32) bool {
	return sl.sec[i] < sec || sl.sec[i] == sec && sl.nsec[i] < nsec
}

// slotChunkLen is the number of slots in a chunk: 32 KiB, the largest
// small object, so that chunks come from the size-classed heap.
const slotChunkLen = 256

type slotChunk [slotChunkLen]tokenSlot

// maxShardSlots bounds the slots of a shard: a reference across shards (in
// the grant index) packs the shard in the high 6 bits of a uint32.
const maxShardSlots = 1 << 26

// slotStore is the slots of a shard, in chunks that never move, so that a
// slot's reference stays valid until it is freed. Freed slots are reused
// before new ones; chunks are never returned.
type slotStore struct {
	chunks []*slotChunk
	free   []uint32
	used   uint32 // slots handed out from the chunks, free or not
}

func (st *slotStore) at(ref uint32) *tokenSlot {
	return &st.chunks[ref/slotChunkLen][ref%slotChunkLen]
}

func (st *slotStore) alloc() uint32 {
	if n := len(st.free); n > 0 {
		ref := st.free[n-1]
		st.free = st.free[:n-1]
		return ref
	}
	if st.used == maxShardSlots {
		panic("mcpoauth: memory model: too many tokens in one shard")
	}
	if int(st.used/slotChunkLen) == len(st.chunks) {
		st.chunks = append(st.chunks, new(slotChunk))
	}
	st.used++
	return st.used - 1
}

func (st *slotStore) release(ref uint32) {
	*st.at(ref) = tokenSlot{}
	st.free = append(st.free, ref)
}

// all calls fn with every live slot. fn must not change the store.
func (st *slotStore) all(fn func(ref uint32, sl *tokenSlot)) {
	for c, chunk := range st.chunks {
		for i := range chunk {
			if sl := &chunk[i]; sl.live {
				fn(uint32(c*slotChunkLen+i), sl)
			}
		}
	}
}

// internTable holds one copy of each string (and each list of scopes) the
// tokens of a shard name, with the number of slots naming it, and forgets
// it with the last. Its size follows the number of distinct clients, users,
// resources and scope sets, not of tokens.
type internTable struct {
	strs   map[string]uint32 // string → id
	scopes map[string]uint32 // scopesKey → id
	vals   []internVal       // by id; vals[0] stands for "" and nil scopes
	free   []uint32
}

type internVal struct {
	// key is the string, or the scopes' key in scopes.
	key      string
	scopes   []string
	isScopes bool
	refs     uint32
}

func (it *internTable) init() {
	if it.vals == nil {
		it.strs = make(map[string]uint32)
		it.scopes = make(map[string]uint32)
		it.vals = make([]internVal, 1)
	}
}

func (it *internTable) str(id uint32) string         { return it.vals[id].key }
func (it *internTable) scopeList(id uint32) []string { return it.vals[id].scopes }

// lookup returns the id of s, or 0 if the table does not hold it.
func (it *internTable) lookup(s string) uint32 { return it.strs[s] }

// addString returns the id of s, counting one more slot naming it.
func (it *internTable) addString(s string) uint32 {
	if s == "" {
		return 0
	}
	it.init()
	if id, ok := it.strs[s]; ok {
		it.vals[id].refs++
		return id
	}
	// A copy: s may be a slice of a request's body.
	s = strings.Clone(s)
	id := it.newID(internVal{key: s, refs: 1})
	it.strs[s] = id
	return id
}

// addScopes returns the id of scopes, counting one more slot naming it.
// nil is 0; an empty list is not nil.
func (it *internTable) addScopes(scopes []string) uint32 {
	if scopes == nil {
		return 0
	}
	it.init()
	var buf [128]byte
	key := scopesKey(buf[:0], scopes)
	if id, ok := it.scopes[string(key)]; ok {
		it.vals[id].refs++
		return id
	}
	own := make([]string, len(scopes))
	for i, s := range scopes {
		own[i] = strings.Clone(s)
	}
	k := string(key)
	id := it.newID(internVal{key: k, scopes: own, isScopes: true, refs: 1})
	it.scopes[k] = id
	return id
}

// scopesKey appends an encoding of scopes that tells every list apart:
// each scope preceded by its length.
func scopesKey(b []byte, scopes []string) []byte {
	for _, s := range scopes {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func (it *internTable) newID(v internVal) uint32 {
	if n := len(it.free); n > 0 {
		id := it.free[n-1]
		it.free = it.free[:n-1]
		it.vals[id] = v
		return id
	}
	it.vals = append(it.vals, v)
	return uint32(len(it.vals) - 1)
}

// release counts one slot fewer naming id, forgetting it with the last.
func (it *internTable) release(id uint32) {
	if id == 0 {
		return
	}
	v := &it.vals[id]
	if v.refs--; v.refs > 0 {
		return
	}
	if v.isScopes {
		delete(it.scopes, v.key)
	} else {
		delete(it.strs, v.key)
	}
	*v = internVal{}
	it.free = append(it.free, id)
}

// memoryTokenShard is one shard of the token store: its slots, the table
// that finds them by digest, and the strings they name. Everything in it is
// written only with both MemoryModel.mu and the shard's write lock held,
// so holding either one is enough to read it. It is padded to a multiple of
// 128 bytes so that readers of neighbouring shards do not share a cache
// line (RLock writes to the mutex).
type memoryTokenShard struct {
	tokenShard
	_ [(128 - unsafe.Sizeof(tokenShard{})%128) % 128]byte
}

type tokenShard struct {
	mu     sync.RWMutex
	tokens tokenIndex // by digest
	slots  slotStore
	strs   internTable
}

// hashOfRef is the digest hash of the slot ref names, for tokens' moves.
func (s *tokenShard) hashOfRef(ref uint32) uint64 { return digestHash(s.slots.at(ref).digest) }

// find returns the reference of the token with digest d, whose hash is h,
// or -1. It does not allocate.
func (s *tokenShard) find(h uint64, d Digest) int64 {
	x := &s.tokens
	if x.n == 0 {
		return -1
	}
	tag := tagOf(h)
	for i := x.home(h); ; i = x.next(i) {
		switch x.tags[i] {
		case 0:
			return -1
		case tag:
			if r := x.refs[i]; s.slots.at(r).digest == d {
				return int64(r)
			}
		}
	}
}

// grantID returns the grant ID of a slot. An ID held in the slot is
// returned without a copy: the caller must not keep it past a change of
// the slot.
func (s *tokenShard) grantID(sl *tokenSlot) string {
	if id := sl.grantLong(); id != 0 {
		return s.strs.str(id)
	}
	return unsafe.String(&sl.grant[0], int(sl.grantLen))
}

// tokenBox is a *Token built from a slot with room for its grant ID, so
// that building one is one allocation.
type tokenBox struct {
	Token
	grant [slotGrantLen]byte
}

// token builds the record of slot ref.
func (s *tokenShard) token(ref uint32) *Token {
	sl := s.slots.at(ref)
	b := &tokenBox{Token: Token{
		Digest:         sl.digest,
		Kind:           sl.kind,
		ClientID:       s.strs.str(sl.client),
		UserID:         s.strs.str(sl.user),
		Scopes:         s.strs.scopeList(sl.scopes),
		Resource:       s.strs.str(sl.resource),
		IssuedAt:       sl.time(slotIssuedAt),
		ExpiresAt:      sl.time(slotExpiresAt),
		GrantExpiresAt: sl.time(slotGrantExpiresAt),
		RotatedAt:      sl.time(slotRotatedAt),
		JKT:            s.strs.str(sl.jkt),
	}}
	if id := sl.grantLong(); id != 0 {
		b.GrantID = s.strs.str(id)
	} else if sl.grantLen > 0 {
		// The box is never written again: the string stays immutable.
		b.grant = sl.grant
		b.GrantID = unsafe.String(&b.grant[0], int(sl.grantLen))
	}
	return &b.Token
}

// add stores t in a new slot and indexes it by digest, returning its
// reference. Call with the shard's write lock held.
func (s *tokenShard) add(t *Token) uint32 {
	ref := s.slots.alloc()
	sl := s.slots.at(ref)
	*sl = tokenSlot{
		digest:   t.Digest,
		kind:     t.Kind,
		live:     true,
		client:   s.strs.addString(t.ClientID),
		user:     s.strs.addString(t.UserID),
		resource: s.strs.addString(t.Resource),
		scopes:   s.strs.addScopes(t.Scopes),
		jkt:      s.strs.addString(t.JKT),
	}
	if len(t.GrantID) > slotGrantLen {
		sl.setGrantLong(s.strs.addString(t.GrantID))
	} else {
		sl.grantLen = uint8(copy(sl.grant[:], t.GrantID))
	}
	sl.setTime(slotIssuedAt, t.IssuedAt)
	sl.setTime(slotExpiresAt, t.ExpiresAt)
	sl.setTime(slotGrantExpiresAt, t.GrantExpiresAt)
	sl.setTime(slotRotatedAt, t.RotatedAt)
	s.tokens.insert(digestHash(t.Digest), ref, s.hashOfRef)
	return ref
}

// remove deletes the token of slot ref and forgets its strings. Call with
// the shard's write lock held.
func (s *tokenShard) remove(ref uint32) {
	sl := s.slots.at(ref)
	s.tokens.remove(digestHash(sl.digest), ref, s.hashOfRef)
	for _, id := range [...]uint32{sl.client, sl.user, sl.resource, sl.scopes, sl.jkt, sl.grantLong()} {
		s.strs.release(id)
	}
	s.slots.release(ref)
}
