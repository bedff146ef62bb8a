package guard

import (
	"net/netip"
	"time"
)

// shards splits the source table so concurrent requests from different
// sources rarely share a lock; each shard holds at most MaxSources/shards.
const shards = 16

// evictSkips is how many actively blocked sources eviction moves out of the
// way before it evicts one anyway: a hard memory cap beats keeping every
// block when an attacker sprays more sources than the cap.
const evictSkips = 8

// idleSweep is how many idle sources one insertion may evict besides
// making room: the table shrinks back after a spray without a janitor
// goroutine.
const idleSweep = 2

// entry is everything the guard knows about one source. Entries form a
// doubly linked list per shard, most recently seen first (LRU).
type entry struct {
	key        netip.Addr
	prev, next *entry
	lastSeen   time.Time

	buckets [classes]bucket

	failStart time.Time // first failed auth of the current window
	fails     int

	floodStart time.Time // first rate-limited request of the current window
	floods     int

	blockedUntil time.Time
	blockReason  string
	verdict      string // "blocked: " + blockReason
	hits         uint64 // requests dropped while blocked
}

func (e *entry) blocked(now time.Time) bool { return now.Before(e.blockedUntil) }

// clearBlock gives a source whose block ended (or was lifted) a clean slate.
func (e *entry) clearBlock() {
	e.blockedUntil, e.blockReason, e.verdict, e.hits = time.Time{}, "", "", 0
	e.fails, e.failStart = 0, time.Time{}
	e.floods, e.floodStart = 0, time.Time{}
}

type shard struct {
	m          map[netip.Addr]*entry
	head, tail *entry
}

// lookup finds k's entry and marks it most recently seen.
func (s *shard) lookup(k netip.Addr) *entry {
	e := s.m[k]
	if e != nil {
		s.toFront(e)
	}
	return e
}

// getOrCreate is lookup, creating the entry (evicting to stay under the
// policy's cap) when k is new. It reports how many entries it evicted.
func (s *shard) getOrCreate(k netip.Addr, now time.Time, p *policy) (*entry, int) {
	if e := s.lookup(k); e != nil {
		return e, 0
	}
	evicted := 0
	for range idleSweep {
		t := s.tail
		if t == nil || t.blocked(now) || now.Sub(t.lastSeen) < p.idleAfter {
			break
		}
		s.remove(t)
		evicted++
	}
	for len(s.m) >= max(p.shardCap, 1) {
		if !s.evictOne(now) {
			break
		}
		evicted++
	}
	e := &entry{key: k, lastSeen: now}
	s.m[k] = e
	s.pushFront(e)
	return e, evicted
}

// evictOne removes the least recently seen entry, passing over a few
// actively blocked ones first.
func (s *shard) evictOne(now time.Time) bool {
	for range evictSkips {
		t := s.tail
		if t == nil {
			return false
		}
		if t.blocked(now) && t != s.head {
			s.toFront(t)
			continue
		}
		s.remove(t)
		return true
	}
	if s.tail == nil {
		return false
	}
	s.remove(s.tail)
	return true
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) toFront(e *entry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.m, e.key)
}

// sourceKey is what the guard tracks a source by: the IPv4 address, or an
// IPv6 address's /64 — one customer's allocation, in which an attacker can
// pick any address for every request.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64) // never fails for a valid IPv6 address
		return p.Addr()
	}
	return a
}
