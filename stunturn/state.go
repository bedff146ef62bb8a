package stunturn

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxEnded bounds the finished allocations kept for status: a class
// makes a few hundred calls, and the last ones are what gets discussed.
const maxEnded = 100

// state is what the server saw: Binding requests per client, allocations
// with their permissions and relayed bytes. pion calls the event hooks from
// its own goroutines, so everything here is guarded by mu or atomic.
type state struct {
	mu       sync.Mutex
	bindings map[netip.AddrPort]*bindingRecord
	maxBind  int
	// relays by relayed address: created by the address generator before
	// pion reports the allocation, so bytes are counted from the start.
	relays map[netip.AddrPort]*alloc
	// live allocations by their 5-tuple (client, server).
	live  map[tupleKey]*alloc
	ended []*alloc

	bindingRequests atomic.Uint64
	authFailures    atomic.Uint64
	quotaRefusals   atomic.Uint64
	lastAuthFailure string
}

type tupleKey struct{ client, server string }

type bindingRecord struct {
	client   netip.AddrPort
	requests uint64
	first    time.Time
	last     time.Time
}

type counter struct{ packets, bytes atomic.Uint64 }

func (c *counter) add(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

func (c *counter) snapshot() Traffic {
	return Traffic{Packets: c.packets.Load(), Bytes: c.bytes.Load()}
}

// alloc is one allocation as the server saw it.
type alloc struct {
	relayed netip.AddrPort
	// Set when pion reports the allocation (OnAllocationCreated).
	user, realm, client, server, proto string
	created                            time.Time
	ended                              time.Time
	endReason                          string
	perms                              map[netip.Addr]time.Time

	toPeer, fromPeer, droppedFromPeer counter
	lastPeer                          atomic.Value // string: the last peer that sent to the relay
}

func newState(maxBind int) *state {
	return &state{
		bindings: map[netip.AddrPort]*bindingRecord{},
		maxBind:  maxBind,
		relays:   map[netip.AddrPort]*alloc{},
		live:     map[tupleKey]*alloc{},
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func ipOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// binding records a Binding request from client; the mapped address the
// server answers with is the source it saw, which is the whole point.
func (s *state) binding(client netip.AddrPort, now time.Time) {
	s.bindingRequests.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.bindings[client]
	if !ok {
		if len(s.bindings) >= s.maxBind {
			s.dropOldestBindingLocked()
		}
		r = &bindingRecord{client: client, first: now}
		s.bindings[client] = r
	}
	r.requests++
	r.last = now
}

func (s *state) dropOldestBindingLocked() {
	var oldest *bindingRecord
	for _, r := range s.bindings {
		if oldest == nil || r.last.Before(oldest.last) {
			oldest = r
		}
	}
	if oldest != nil {
		delete(s.bindings, oldest.client)
	}
}

func (s *state) newRelay(relayed netip.AddrPort) *alloc {
	a := &alloc{relayed: relayed, created: time.Now(), perms: map[netip.Addr]time.Time{}}
	s.mu.Lock()
	s.relays[relayed] = a
	s.mu.Unlock()
	return a
}

// relayEnding records why the server itself is ending an allocation
// (before pion reports it deleted).
func (s *state) relayEnding(a *alloc, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.endReason == "" {
		a.endReason = reason
	}
}

// relaySocketClosed forgets a relay socket pion never turned into an
// allocation (it probes for even ports by opening and closing sockets).
func (s *state) relaySocketClosed(a *alloc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.client == "" && s.relays[a.relayed] == a {
		delete(s.relays, a.relayed)
	}
}

func (s *state) allocationCreated(src, dst net.Addr, proto, user, realm string, relayed net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.relays[addrPortOf(relayed)]
	if !ok {
		// Not one of our sockets: cannot happen with our generator, but
		// status must still show it.
		a = &alloc{relayed: addrPortOf(relayed), created: time.Now(), perms: map[netip.Addr]time.Time{}}
	}
	a.user, a.realm, a.client, a.server, a.proto = user, realm, addrString(src), addrString(dst), proto
	a.created = time.Now()
	s.live[tupleKey{a.client, a.server}] = a
}

func (s *state) allocationDeleted(src, dst net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tupleKey{addrString(src), addrString(dst)}
	a, ok := s.live[k]
	if !ok {
		return
	}
	delete(s.live, k)
	delete(s.relays, a.relayed)
	a.ended = time.Now()
	if a.endReason == "" {
		a.endReason = "deallocated or expired"
	}
	clear(a.perms)
	s.ended = append(s.ended, a)
	if len(s.ended) > maxEnded {
		s.ended = slices.Delete(s.ended, 0, len(s.ended)-maxEnded)
	}
}

func (s *state) permission(relayed net.Addr, peer net.IP, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.relays[addrPortOf(relayed)]
	if !ok {
		return
	}
	if add {
		a.perms[ipOf(peer)] = time.Now()
	} else {
		delete(a.perms, ipOf(peer))
	}
}

// permitted says whether a packet from peer reaching a's relay socket will
// be passed to the client (pion checks the same permission right after).
func (s *state) permitted(a *alloc, peer netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := a.perms[peer]
	return ok
}

// liveForUser counts live allocations, all and of one user (quota).
func (s *state) liveCounts(user string) (all, mine int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.live {
		all++
		if a.user == user {
			mine++
		}
	}
	return all, mine
}

func (s *state) authFailed(user, src, what string) {
	s.authFailures.Add(1)
	s.mu.Lock()
	s.lastAuthFailure = time.Now().UTC().Format(time.RFC3339) + " user " + quoteUser(user) + " from " + src + ": " + what
	s.mu.Unlock()
}

func quoteUser(u string) string {
	if u == "" {
		return `""`
	}
	return u
}

// forget drops the record of Binding requests and ended allocations and
// zeroes the counters: what a server just started shows. Live
// allocations stay (pion owns them; they end with their calls).
func (s *state) forget() (bindings, ended int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bindings, ended = len(s.bindings), len(s.ended)
	s.bindings = map[netip.AddrPort]*bindingRecord{}
	s.ended = nil
	s.lastAuthFailure = ""
	s.bindingRequests.Store(0)
	s.authFailures.Store(0)
	s.quotaRefusals.Store(0)
	return bindings, ended
}
