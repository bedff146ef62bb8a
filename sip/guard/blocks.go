package guard

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Block is one blocked source, for the SBC's status and `unblock`.
type Block struct {
	// Source is the address blocked: an IPv4 address, or the first address
	// of the IPv6 /64 the guard tracks as one source.
	Source netip.Addr `json:"source"`
	Reason string     `json:"reason"`
	Until  time.Time  `json:"until"`
	// Hits are the requests refused since the block began.
	Hits uint64 `json:"hits"`
}

// Blocked lists the sources blocked at now, the soonest to end first.
func (g *Guard) Blocked(now time.Time) []Block {
	var out []Block
	for i := range g.shards {
		sh := &g.shards[i]
		sh.Lock()
		for _, e := range sh.m {
			if e.blocked(now) {
				out = append(out, Block{Source: e.key, Reason: e.blockReason, Until: e.blockedUntil, Hits: e.hits})
			}
		}
		sh.Unlock()
	}
	slices.SortFunc(out, func(a, b Block) int {
		if c := a.Until.Compare(b.Until); c != 0 {
			return c
		}
		return cmp.Compare(a.Source.String(), b.Source.String())
	})
	return out
}

// Unblock lifts src's block and forgets its failures, as an operator does
// for a customer who mistyped a password. It reports whether src had a
// block (one that has ended but was not yet cleared counts too).
func (g *Guard) Unblock(src netip.Addr) bool {
	k := sourceKey(src)
	sh := g.shardFor(k)
	sh.Lock()
	defer sh.Unlock()
	e := sh.m[k]
	if e == nil || e.blockedUntil.IsZero() {
		return false
	}
	e.clearBlock()
	return true
}

// Stats are the guard's counters since New.
type Stats struct {
	// Admitted requests, of which TrunkAdmitted came from trunks.
	Admitted      uint64 `json:"admitted"`
	TrunkAdmitted uint64 `json:"trunk_admitted"`
	// RateLimited requests were refused by a token bucket.
	RateLimited uint64 `json:"rate_limited"`
	// BlockedDrops were refused because their source was blocked.
	BlockedDrops uint64 `json:"blocked_drops"`
	// ScannersSeen requests carried a scanner User-Agent.
	ScannersSeen uint64 `json:"scanners_seen"`
	// FailedAuths are 401/407/403 responses observed.
	FailedAuths uint64 `json:"failed_auths"`
	// Blocks imposed (scanner, failed auth, flood).
	Blocks uint64 `json:"blocks"`
	// Sources tracked now, and how many were evicted (idle, or to stay
	// under MaxSources).
	Sources   int    `json:"sources"`
	Evictions uint64 `json:"evictions"`
}

// Stats snapshots the counters.
func (g *Guard) Stats() Stats {
	st := Stats{
		Admitted: g.admitted.Load(), TrunkAdmitted: g.trunkAdmitted.Load(),
		RateLimited: g.rateLimited.Load(), BlockedDrops: g.blockedDrops.Load(),
		ScannersSeen: g.scannersSeen.Load(), FailedAuths: g.failedAuths.Load(),
		Blocks: g.blocks.Load(), Evictions: g.evictions.Load(),
	}
	for i := range g.shards {
		sh := &g.shards[i]
		sh.Lock()
		st.Sources += len(sh.m)
		sh.Unlock()
	}
	return st
}

// Forget drops every source's state — blocks, failure counts, rate
// buckets — as a guard just started has none; counters stay. It returns
// the blocks that were in force at now.
func (g *Guard) Forget(now time.Time) []Block {
	lifted := g.Blocked(now)
	for i := range g.shards {
		sh := &g.shards[i]
		sh.Lock()
		sh.m = make(map[netip.Addr]*entry)
		sh.Unlock()
	}
	return lifted
}
