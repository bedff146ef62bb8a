package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/ladder"
)

// An INVITE or BYE that never reaches its target: every copy of the request
// travels towards the proxy and none leaves it (no copy is sent from an
// address another copy was sent to), and nothing but a timeout or a
// cancellation answers it. Counting hops rather than routers keeps a
// same-site call (both phones behind one router) from looking lost. In the lab that is the proxy routing to a private Contact
// (contact_fixup off) or to a closed pinhole: the packet leaves the proxy
// towards an address no router owns, so no capture point downstream sees it.
func init() {
	register(Rule{Name: "lost-request", Title: "INVITE or BYE that never reaches its target", Check: checkLost})
}

// lost is one request that never reached its target.
type lost struct {
	n       int // message number of its first copy
	cseq    string
	nodes   []string
	answers []int
}

// rejectedAtOnce bounds how soon a 404/480 must follow the request to be
// the proxy's own answer (no binding: nothing to forward to) rather than a
// timeout of a forwarded copy: well under Timer B/F (32 s), over a slow
// location lookup.
const rejectedAtOnce = 4 * time.Second

func checkLost(c *ladder.Call) []Finding {
	var ev []Evidence
	for _, l := range lostRequests(c) {
		m := c.Messages[l.n-1]
		ev = append(ev, Evidence{N: l.n, Iface: m.Iface,
			What: fmt.Sprintf("%s (CSeq %s) seen only on its way to the proxy, at %s; answers: %v", m.Label, l.cseq, strings.Join(l.nodes, ","), l.answers)})
	}
	return withEvidence(Finding{Severity: Error,
		Summary:  "a request never reached its target: every copy travels towards the proxy, none leaves it",
		Fix:      "the target came from a Contact: a private one (siplab set proxy contact_fixup auto) or a closed pinhole (keep-alives on, a longer pinhole)",
		Evidence: ev})
}

// lostRequests finds the INVITEs and BYEs of c that no capture point saw
// leave the proxy and that nothing but a timeout or a cancellation
// answered. A 404/480 right away is the proxy's own "no such binding", not
// a lost request (registration-expired explains those).
func lostRequests(c *ladder.Call) []lost {
	type info struct {
		first   int
		at      time.Time
		nodes   map[string]bool
		dsts    map[netip.Addr]bool
		srcs    []netip.Addr
		answers []int
		quick   bool // some 404/480 came at once
	}
	byCSeq := map[string]*info{}
	var order []string
	for i, m := range c.Messages {
		if m.Method != "INVITE" && m.Method != "BYE" {
			continue
		}
		// CSeq numbers repeat across the legs of one call (each B2BUA
		// leg starts at 1): the leg is part of the transaction's name.
		cseq := m.Header("CSeq")
		if len(c.Legs) > 1 {
			cseq = fmt.Sprintf("%s, leg %d", cseq, m.Leg)
		}
		in := byCSeq[cseq]
		if in == nil {
			in = &info{first: i, at: m.Time, nodes: map[string]bool{}, dsts: map[netip.Addr]bool{}}
			byCSeq[cseq] = in
			order = append(order, cseq)
		}
		if m.Request {
			in.nodes[node(m.Iface)] = true
			in.dsts[m.Dst.Addr()] = true
			in.srcs = append(in.srcs, m.Src.Addr())
		} else if m.Status >= 200 {
			in.answers = append(in.answers, m.Status)
			if (m.Status == 404 || m.Status == 480) && m.Time.Sub(in.at) < rejectedAtOnce {
				in.quick = true
			}
		}
	}
	var out []lost
	for _, cseq := range order {
		in := byCSeq[cseq]
		m := c.Messages[in.first]
		if !m.Request || in.quick || forwarded(in.srcs, in.dsts) {
			continue
		}
		reached := false
		for _, s := range in.answers {
			// Any answer except these came from the far end (or a
			// challenge from the proxy, which a retry follows).
			if s != 408 && s != 487 && s != 480 && s != 504 {
				reached = true
			}
		}
		if reached {
			continue
		}
		var nodes []string
		for n := range in.nodes {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		out = append(out, lost{n: in.first + 1, cseq: cseq, nodes: nodes, answers: in.answers})
	}
	return out
}

// forwarded reports whether some copy was sent by an address that received
// another copy: the request went past that hop.
func forwarded(srcs []netip.Addr, dsts map[netip.Addr]bool) bool {
	for _, a := range srcs {
		if dsts[a] {
			return true
		}
	}
	return false
}
