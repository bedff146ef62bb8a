package sipauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// A nonce is self-validating, so issuing one costs no memory:
//
//	base64url( issued unix-nanos (8) | sequence (8) | HMAC-SHA256(key, first 16)[:16] )
//
// The key is random per Authenticator, so nonces from a previous run (or a
// different daemon) are "unknown" rather than "stale". The sequence makes
// every nonce distinct, which the nonce-count tracker relies on.
const (
	nonceIDLen  = 16
	nonceRawLen = nonceIDLen + 16
	nonceLen    = 43 // base64.RawURLEncoding.EncodedLen(nonceRawLen)
)

type nonceID [nonceIDLen]byte

type nonceMinter struct {
	seq  atomic.Uint64
	macs sync.Pool // hash.Hash keyed with the secret; hmac.New allocates
}

func newNonceMinter(key []byte, start uint64) *nonceMinter {
	m := &nonceMinter{}
	m.seq.Store(start)
	m.macs.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

func (m *nonceMinter) sign(id *nonceID, out []byte) {
	h := m.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(id[:])
	var sum [sha256.Size]byte
	copy(out, h.Sum(sum[:0])[:16])
	m.macs.Put(h)
}

func (m *nonceMinter) mint(now time.Time) string {
	var raw [nonceRawLen]byte
	var id nonceID
	binary.BigEndian.PutUint64(id[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], m.seq.Add(1))
	copy(raw[:], id[:])
	m.sign(&id, raw[nonceIDLen:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// open checks a nonce's signature and returns its id and issue time.
func (m *nonceMinter) open(nonce string) (nonceID, time.Time, bool) {
	var id nonceID
	if len(nonce) != nonceLen {
		return id, time.Time{}, false
	}
	var raw [nonceRawLen]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil || n != nonceRawLen {
		return id, time.Time{}, false
	}
	copy(id[:], raw[:nonceIDLen])
	var want [16]byte
	m.sign(&id, want[:])
	if !hmac.Equal(want[:], raw[nonceIDLen:]) {
		return id, time.Time{}, false
	}
	return id, time.Unix(0, int64(binary.BigEndian.Uint64(id[:8]))), true
}

// ncTracker remembers the highest nonce-count accepted for each nonce so a
// captured Authorization cannot be replayed while its nonce is still valid.
//
// Memory is bounded two ways. Entries live in two generations per shard,
// rotated every TTL, so an entry is kept at least one TTL after its last use
// (longer than its nonce can be valid) and then dropped wholesale. And each
// generation has a size cap; hitting it rotates early. Whenever a generation
// is dropped, the shard raises its floor to the last nonce sequence number
// minted when that generation stopped taking entries: a nonce at or below the
// floor that is not in the maps might have been used, so it is refused as
// stale (the client silently retries with a fresh nonce) instead of being
// trusted. Sequence numbers, unlike clock readings, never tie. Under normal
// load the floor only ever passes nonces that have expired anyway.
type ncTracker struct {
	ttl    time.Duration
	capGen int
	shards [ncShards]ncShard
}

const ncShards = 64

type ncShard struct {
	mu       sync.Mutex
	cur      map[nonceID]uint32
	prev     map[nonceID]uint32
	curStart time.Time
	curSeq   uint64 // minter sequence when cur started
	floor    uint64
	_        [32]byte // keep shards on separate cache lines
}

func newNCTracker(ttl time.Duration, maxEntries int) *ncTracker {
	t := &ncTracker{ttl: ttl, capGen: max(maxEntries/ncShards/2, 16)}
	for i := range t.shards {
		t.shards[i].cur = map[nonceID]uint32{}
	}
	return t
}

type ncResult int

const (
	ncOK ncResult = iota
	ncReplay
	ncForgotten // might have been used; refuse as stale
)

// use records nonce-count nc for the nonce id, if nc is higher than any seen
// before. seq is the minter's sequence counter; it is read under the shard
// lock so no nonce minted before a rotation can sit above the floor it sets.
func (t *ncTracker) use(id nonceID, nc uint32, now time.Time, seq *atomic.Uint64) ncResult {
	// The sequence number is the low half of the id and increments per
	// nonce, so it spreads evenly over the shards.
	s := &t.shards[id[15]%ncShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	minted := seq.Load()
	if s.curStart.IsZero() {
		s.curStart, s.curSeq = now, minted
	}
	if now.Sub(s.curStart) >= t.ttl || len(s.cur) >= t.capGen {
		// prev is dropped: it stopped taking entries when cur started.
		s.floor = s.curSeq
		s.prev, s.cur = s.cur, make(map[nonceID]uint32, len(s.cur))
		s.curStart, s.curSeq = now, minted
	}
	last, found := s.cur[id]
	if !found {
		if last, found = s.prev[id]; found {
			delete(s.prev, id)
		}
	}
	switch {
	case !found && binary.BigEndian.Uint64(id[8:]) <= s.floor:
		return ncForgotten
	case found && nc <= last:
		s.cur[id] = last
		return ncReplay
	}
	s.cur[id] = nc
	return ncOK
}

// size is the number of tracked nonces (for tests and status).
func (t *ncTracker) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
