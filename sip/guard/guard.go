// Package guard is the platform's per-source security: rate limits for
// REGISTER and INVITE, scanner detection by User-Agent, blocking after
// repeated failed authentication, and an ACL of trusted sources. The SBC
// uses all of it at the edge (Admit, ObserveResponse); the registrar and
// proxy only count the failures they judge themselves and refuse blocked
// sources (Failed, Check). It decides; the daemons act (drop, answer, log).
package guard

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Verdict is Admit's answer for one request.
type Verdict struct {
	Allow bool `json:"allow"`
	// Reason is empty for an ordinary admitted request, "trunk" for a
	// trusted one, else why it was refused: "rate_limited: register",
	// "blocked: scanner: friendly-scanner", ...
	Reason string `json:"reason,omitempty"`
	// RetryAfter is when trying again can succeed (rate limit: the next
	// token; block: its end). For a 503's Retry-After, if the SBC answers.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// Guard tracks sources. All methods are safe for concurrent use; the time
// is always passed in, so tests and replays control the clock.
type Guard struct {
	pol  atomic.Pointer[policy]
	seed maphash.Seed

	shards [shards]lockedShard

	admitted, trunkAdmitted, rateLimited, blockedDrops atomic.Uint64
	scannersSeen, failedAuths, blocks, evictions       atomic.Uint64
}

// New validates cfg and returns a guard with no sources known.
func New(cfg Config) (*Guard, error) {
	p, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	g := &Guard{seed: maphash.MakeSeed()}
	g.pol.Store(p)
	for i := range g.shards {
		g.shards[i].m = make(map[netip.Addr]*entry)
	}
	return g, nil
}

// SetConfig replaces the policy live (the SBC's `set`). Known sources keep
// their state: current blocks keep their end time, buckets their tokens
// (clamped to a smaller Burst), and a lower MaxSources is reached by
// eviction as new sources arrive.
func (g *Guard) SetConfig(cfg Config) error {
	p, err := cfg.compile()
	if err != nil {
		return err
	}
	g.pol.Store(p)
	return nil
}

// Config returns the policy in force (defaults filled in).
func (g *Guard) Config() Config {
	c := g.pol.Load().Config
	c.ScannerUserAgents = append([]string(nil), c.ScannerUserAgents...)
	c.Trunks = append([]netip.Prefix(nil), c.Trunks...)
	return c
}

// IsTrunk says whether src is in a trusted trunk prefix.
func (g *Guard) IsTrunk(src netip.Addr) bool { return g.pol.Load().isTrunk(src.Unmap()) }

func (p *policy) isTrunk(src netip.Addr) bool {
	for _, t := range p.Trunks {
		if t.Contains(src) {
			return true
		}
	}
	return false
}

func (p *policy) rate(c class) float64 {
	switch c {
	case classRegister:
		return p.RegisterRate
	case classInvite:
		return p.InviteRate
	case classOther:
		return p.otherRate
	}
	return 0
}

// lockedShard is a shard and its lock, padded so neighbouring shards'
// locks do not share a cache line.
type lockedShard struct {
	sync.Mutex
	shard
	_ [40]byte
}

func (g *Guard) shardFor(k netip.Addr) *lockedShard {
	return &g.shards[maphash.Comparable(g.seed, k)%shards]
}

// Admit decides whether a request from src may enter. In order: trunks
// always pass; a blocked source is refused until its block ends; a scanner
// User-Agent blocks the source at once; then the method class's token
// bucket; a source that keeps hitting the limit (FloodLimit times within
// FailedAuthWindow) is blocked.
func (g *Guard) Admit(src netip.Addr, method, userAgent string, now time.Time) Verdict {
	p := g.pol.Load()
	src = src.Unmap()
	if p.isTrunk(src) {
		g.trunkAdmitted.Add(1)
		g.admitted.Add(1)
		return Verdict{Allow: true, Reason: "trunk"}
	}
	k := sourceKey(src)
	sh := g.shardFor(k)
	sh.Lock()
	defer sh.Unlock()
	e, ev := sh.getOrCreate(k, now, p)
	g.evictions.Add(uint64(ev))
	if now.After(e.lastSeen) {
		e.lastSeen = now
	}
	if e.blocked(now) {
		e.hits++
		g.blockedDrops.Add(1)
		return Verdict{Reason: e.verdict, RetryAfter: e.blockedUntil.Sub(now)}
	}
	if !e.blockedUntil.IsZero() {
		e.clearBlock() // the block ended: start over
	}
	if pat := p.scanner(userAgent); pat != "" {
		g.scannersSeen.Add(1)
		g.block(e, now, p, "scanner: "+pat)
		return Verdict{Reason: e.verdict, RetryAfter: p.BlockFor}
	}
	c := classOf(method)
	if c == classFree {
		g.admitted.Add(1)
		return Verdict{Allow: true}
	}
	rate := p.rate(c)
	if rate <= 0 {
		g.admitted.Add(1)
		return Verdict{Allow: true}
	}
	ok, wait := e.buckets[c].take(now, rate, p.Burst)
	if ok {
		g.admitted.Add(1)
		return Verdict{Allow: true}
	}
	g.rateLimited.Add(1)
	if p.floodLimit > 0 {
		if e.floodStart.IsZero() || now.Sub(e.floodStart) > p.FailedAuthWindow {
			e.floodStart, e.floods = now, 0
		}
		if e.floods++; e.floods >= p.floodLimit {
			g.block(e, now, p, fmt.Sprintf("flood: %d rate-limited requests in %v", e.floods, p.FailedAuthWindow))
			return Verdict{Reason: e.verdict, RetryAfter: p.BlockFor}
		}
	}
	return Verdict{Reason: limitedReasons[c], RetryAfter: wait}
}

// ObserveResponse feeds the guard the SBC's view of a response to a
// request from src. 401, 407 and 403 count as failed authentication:
// FailedAuthLimit of them within FailedAuthWindow of the first block the
// source. A 2xx to REGISTER or INVITE forgives exactly one failure — the
// challenge that normally precedes a success — but never resets the count,
// so an attacker holding one good account, registering it between
// guesses, still runs into the limit (each guess costs one failure more
// than its success forgives).
func (g *Guard) ObserveResponse(src netip.Addr, method string, status int, now time.Time) {
	p := g.pol.Load()
	src = src.Unmap()
	if p.isTrunk(src) {
		return
	}
	failed := status == 401 || status == 407 || status == 403
	success := status >= 200 && status < 300 && (method == "REGISTER" || method == "INVITE")
	if !failed && !success {
		return
	}
	k := sourceKey(src)
	sh := g.shardFor(k)
	sh.Lock()
	defer sh.Unlock()
	if success {
		// A success from a source never seen failing creates no state.
		if e := sh.lookup(k); e != nil && e.fails > 0 {
			e.fails--
		}
		return
	}
	g.fail(sh, k, now, p)
}

// Failure is what one failed authentication did to its source.
type Failure struct {
	// Fails are the source's failures in the current window, this one
	// included (0 when counting is off or the source is a trunk).
	Fails int
	// Limit is FailedAuthLimit in force.
	Limit int
	// Blocked is the block this failure imposed, nil if none.
	Blocked *Block
}

// Failed records one failed authentication by src that the caller judged
// itself: the registrar and proxy check the digest and call this only for
// credentials that were present and wrong (wrong password, unknown user),
// never for the first challenge of a normal login. FailedAuthLimit of them
// within FailedAuthWindow of the first block the source for BlockFor;
// nothing forgives a failure (a phone with the right password never
// fails, so there is nothing to net out).
func (g *Guard) Failed(src netip.Addr, now time.Time) Failure {
	p := g.pol.Load()
	src = src.Unmap()
	if p.isTrunk(src) {
		return Failure{Limit: p.FailedAuthLimit}
	}
	k := sourceKey(src)
	sh := g.shardFor(k)
	sh.Lock()
	defer sh.Unlock()
	return g.fail(sh, k, now, p)
}

// fail counts one failure of k; the shard lock is held.
func (g *Guard) fail(sh *lockedShard, k netip.Addr, now time.Time, p *policy) Failure {
	g.failedAuths.Add(1)
	f := Failure{Limit: p.FailedAuthLimit}
	if p.FailedAuthLimit <= 0 {
		return f
	}
	e, ev := sh.getOrCreate(k, now, p)
	g.evictions.Add(uint64(ev))
	if now.After(e.lastSeen) {
		e.lastSeen = now
	}
	if e.blocked(now) {
		f.Fails = e.fails
		return f
	}
	if !e.blockedUntil.IsZero() {
		e.clearBlock()
	}
	if e.failStart.IsZero() || now.Sub(e.failStart) > p.FailedAuthWindow {
		e.failStart, e.fails = now, 0
	}
	e.fails++
	f.Fails = e.fails
	if e.fails >= p.FailedAuthLimit {
		g.block(e, now, p, fmt.Sprintf("failed_auth: %d in %v", e.fails, p.FailedAuthWindow))
		f.Blocked = &Block{Source: e.key, Reason: e.blockReason, Until: e.blockedUntil}
	}
	return f
}

// Check is Admit without rate limits, scanner checks or new state: it
// refuses a request only when its source is blocked (and counts the
// refusal in the block's hits). For daemons behind the edge (registrar,
// proxy) that only block password guessers: a source never blocked costs
// a map lookup and no memory.
func (g *Guard) Check(src netip.Addr, now time.Time) Verdict {
	p := g.pol.Load()
	src = src.Unmap()
	if p.isTrunk(src) {
		return Verdict{Allow: true, Reason: "trunk"}
	}
	k := sourceKey(src)
	sh := g.shardFor(k)
	sh.Lock()
	defer sh.Unlock()
	e := sh.m[k]
	if e == nil || !e.blocked(now) {
		g.admitted.Add(1)
		return Verdict{Allow: true}
	}
	e.hits++
	g.blockedDrops.Add(1)
	return Verdict{Reason: e.verdict, RetryAfter: e.blockedUntil.Sub(now)}
}

// block imposes a block on e; the shard lock is held.
func (g *Guard) block(e *entry, now time.Time, p *policy, reason string) {
	// The verdict's text is built once here, not for every refused request
	// of a flood.
	e.blockedUntil, e.blockReason, e.verdict, e.hits = now.Add(p.BlockFor), reason, "blocked: "+reason, 0
	g.blocks.Add(1)
}
