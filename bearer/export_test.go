package bearer

import "crypto/sha256"

// SetOnJoin installs a hook the verifier calls (with its cache locked) when a
// caller joins an introspection request already in flight.
func SetOnJoin(v *IntrospectionVerifier, f func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.onJoin = f
}

// CachedDigests returns the keys of the verifier's cache.
func CachedDigests(v *IntrospectionVerifier) [][sha256.Size]byte {
	return v.cache.Keys()
}
