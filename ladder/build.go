package ladder

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/siplab/siplab/capture"
)

// handover is how long a B2BUA (the PBX, the SBC) may take to start the
// next leg of a call after the INVITE that caused it arrived: it answers in
// milliseconds, and nothing else in the lab starts an INVITE from a B2BUA
// within this window of another arriving there, except a second call at
// the same moment, which the From user tells apart.
const handover = 2 * time.Second

// Build groups a trace's SIP messages into calls and attaches RTP streams.
// topo is the lab's plan (Lab()); nil draws every address as its own bare
// column. Calls are in order of their first message; INVITE calls are
// numbered 1, 2, … in that order (Number keeps numbers stable across
// reads of a growing capture folder).
//
// A call is every dialog of it: the messages are grouped into legs by
// Call-ID (and by top Via branch with CSeq, because a broken ALG rewrites
// the Call-ID but not the branch), and legs into one call where a B2BUA
// joins them: the X-Siplab-Call header the PBX and the SBC write on their
// core-side legs, and, for the SBC's access side that carries no such
// header by design (topology hiding), the INVITE the SBC sends within
// handover of one arriving at it.
func Build(tr *capture.Trace, topo *Topology) []*Call {
	if tr == nil {
		return nil
	}
	if topo == nil {
		topo = &Topology{}
	}
	// One packet seen at two capture points on one link is one message.
	msgs := dedupe(tr.SIP, topo)
	for i := range msgs {
		m := &msgs[i]
		m.Sender, m.Receiver = topo.Hop(m.Iface, m.Src.Addr(), m.Dst.Addr())
	}
	natMessages(msgs, topo)

	// Legs: union-find over message indexes.
	legOf := newUnion(len(msgs))
	first := map[string]int{}
	link := func(u *union, key string, i int) {
		if j, ok := first[key]; ok {
			u.join(i, j)
			return
		}
		first[key] = i
	}
	for i, m := range msgs {
		if id := m.Header("Call-ID"); id != "" {
			link(legOf, "cid\x00"+id, i)
		}
		if br := viaBranch(m.Header("Via")); br != "" {
			link(legOf, "br\x00"+br+"\x00"+m.Header("CSeq"), i)
		}
	}
	legIdx := map[int]int{}
	var legs [][]int // message indexes of each leg, in time order
	for i := range msgs {
		r := legOf.find(i)
		l, ok := legIdx[r]
		if !ok {
			l = len(legs)
			legIdx[r] = l
			legs = append(legs, nil)
		}
		legs[l] = append(legs[l], i)
	}

	// Calls: union-find over legs.
	callOf := newUnion(len(legs))
	first = map[string]int{}
	for l, idx := range legs {
		for _, i := range idx {
			if x := msgs[i].Header(CorrelationHeader); x != "" {
				link(callOf, "x\x00"+x, l)
			}
		}
	}
	for l, p := range handovers(msgs, legs, topo) {
		callOf.join(l, p)
	}
	callIdx := map[int]int{}
	var groups [][]int // legs of each call
	for l := range legs {
		r := callOf.find(l)
		c, ok := callIdx[r]
		if !ok {
			c = len(groups)
			callIdx[r] = c
			groups = append(groups, nil)
		}
		groups[c] = append(groups[c], l)
	}

	var calls []*Call
	for _, g := range groups {
		c := &Call{Topo: topo}
		var legMsgs [][]Message
		for _, l := range g {
			var lm []Message
			for _, i := range legs[l] {
				lm = append(lm, msgs[i])
			}
			legMsgs = append(legMsgs, lm)
		}
		c.assemble(legMsgs, topo)
		c.attachRTP(tr.RTP, topo)
		calls = append(calls, c)
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	n := 0
	for _, c := range calls {
		if c.IsInvite() {
			n++
			c.N = n
		}
	}
	return calls
}

// handovers finds, for each leg a B2BUA started with an INVITE, the leg
// whose INVITE arrived at that B2BUA just before (within handover): the
// same call on the B2BUA's other side. The result maps leg → leg.
func handovers(msgs []Message, legs [][]int, topo *Topology) map[int]int {
	type arrival struct {
		leg  int
		at   time.Time
		from string
	}
	byNode := map[string][]arrival{}
	type start struct {
		leg  int
		node string
		at   time.Time
		from string
	}
	var starts []start
	for l, idx := range legs {
		// Every node an initial INVITE (no To tag: the first one, or its
		// retry with credentials) reached is a node it arrived at.
		seen := map[string]bool{}
		from, initial := "", false
		for _, i := range idx {
			m := msgs[i]
			if !m.Request || m.Method != "INVITE" || strings.Contains(m.Header("To"), "tag=") {
				continue
			}
			if !initial {
				from, initial = userOf(m.Header("From")), true
			}
			if n := m.Receiver.Node; n != "" && !seen[n] && topo.RoleOf(n).B2BUA() {
				seen[n] = true
				byNode[n] = append(byNode[n], arrival{l, m.Time, from})
			}
		}
		if !initial {
			continue
		}
		origin := msgs[idx[0]].Sender.Node
		if topo.RoleOf(origin).B2BUA() && msgs[idx[0]].Request {
			starts = append(starts, start{l, origin, msgs[idx[0]].Time, from})
		}
	}
	out := map[int]int{}
	for _, s := range starts {
		best, bestScore := -1, 0.0
		for _, a := range byNode[s.node] {
			d := s.at.Sub(a.at)
			if a.leg == s.leg || d < -sameWire || d > handover {
				continue
			}
			score := float64(handover-d) / float64(handover)
			if a.from == s.from {
				score += 1 // the same caller on both sides breaks ties
			}
			if best < 0 || score > bestScore {
				best, bestScore = a.leg, score
			}
		}
		if best >= 0 {
			out[s.leg] = best
		}
	}
	return out
}

// assemble lays the call out: legs in order of their first message, each
// leg's nodes in the order its messages cross them, the legs joined at the
// node they share (the B2BUA), every message an arrow between the columns
// of its hop.
func (c *Call) assemble(legMsgs [][]Message, topo *Topology) {
	sort.SliceStable(legMsgs, func(i, j int) bool { return legMsgs[i][0].Time.Before(legMsgs[j][0].Time) })
	type col struct {
		end  End
		legs []int
	}
	var cols []*col
	legCols := make([]map[string]*col, len(legMsgs))
	for li, lm := range legMsgs {
		chain := chainOf(lm)
		legCols[li] = map[string]*col{}
		at := func(i int, e End) *col {
			k := &col{end: e}
			cols = append(cols, nil)
			copy(cols[i+1:], cols[i:])
			cols[i] = k
			return k
		}
		ends := map[string]End{}
		for _, m := range lm {
			ends[m.Sender.Name()], ends[m.Receiver.Name()] = m.Sender, m.Receiver
		}
		// The longest run of this leg's nodes already in the ladder,
		// starting at its first node (later crossings win ties: a B2BUA
		// leg continues from the last place the call reached).
		k, run := -1, 0
		for i := range cols {
			if cols[i].end.Name() != chain[0] {
				continue
			}
			n := 0
			for n < len(chain) && i+n < len(cols) && cols[i+n].end.Name() == chain[n] {
				n++
			}
			if n >= run {
				k, run = i, n
			}
		}
		switch {
		case k >= 0:
			for j := 0; j < run; j++ {
				legCols[li][chain[j]] = cols[k+j]
			}
			pos := k + run
			for _, name := range chain[run:] {
				legCols[li][name] = at(pos, ends[name])
				pos++
			}
		case len(cols) > 0 && chain[len(chain)-1] == cols[0].end.Name():
			// The leg ends where the ladder starts: it comes first.
			legCols[li][chain[len(chain)-1]] = cols[0]
			for j, name := range chain[:len(chain)-1] {
				legCols[li][name] = at(j, ends[name])
			}
		default:
			for _, name := range chain {
				legCols[li][name] = at(len(cols), ends[name])
			}
		}
	}
	index := map[*col]int{}
	for i, k := range cols {
		index[k] = i
		addr := k.end.Addr
		h := Host{}
		if k.end.Node != "" {
			n, _ := topo.Node(k.end.Node)
			h = Host{Name: k.end.Node, Role: string(topo.RoleOf(k.end.Node))}
			if n.Role == RoleRouter {
				// A router's face is its public address.
				for a, nn := range n.Addrs {
					if netw, ok := topo.Net(nn); ok && netw.Public {
						addr = a
					}
				}
			}
		}
		c.Columns = append(c.Columns, Column{Addr: addr, Host: h})
	}
	for li, lm := range legMsgs {
		leg := Leg{N: li + 1, CallID: lm[0].CallID}
		for _, m := range lm {
			if m.Request {
				leg.From, leg.To = userOf(m.Header("From")), userOf(m.Header("To"))
				break
			}
		}
		for _, name := range chainOf(lm) {
			leg.Nodes = append(leg.Nodes, name)
			leg.Columns = append(leg.Columns, index[legCols[li][name]])
		}
		for _, ci := range leg.Columns {
			if !containsInt(c.Columns[ci].Legs, leg.N) {
				c.Columns[ci].Legs = append(c.Columns[ci].Legs, leg.N)
			}
		}
		c.Legs = append(c.Legs, leg)
		for _, m := range lm {
			m.Leg = leg.N
			m.From, m.To = index[legCols[li][m.Sender.Name()]], index[legCols[li][m.Receiver.Name()]]
			c.Messages = append(c.Messages, m)
		}
	}
	sort.SliceStable(c.Messages, func(i, j int) bool { return c.Messages[i].Time.Before(c.Messages[j].Time) })
	for _, m := range c.Messages {
		if m.CallID != "" && !contains(c.CallIDs, m.CallID) {
			c.CallIDs = append(c.CallIDs, m.CallID)
		}
		c.use(m.From, m.Src.Addr(), topo)
		c.use(m.From, m.Dst.Addr(), topo)
		c.use(m.To, m.Src.Addr(), topo)
		c.use(m.To, m.Dst.Addr(), topo)
	}
	c.ID = c.Messages[0].CallID
	// The call's name is its first INVITE's Call-ID when it has one.
	for _, m := range c.Messages {
		if m.Request && m.Method == "INVITE" {
			c.ID = m.CallID
			break
		}
	}
	c.Start, c.End = c.Messages[0].Time, c.Messages[len(c.Messages)-1].Time
}

// use records that column i's node showed address a on the wire (only an
// address the node owns).
func (c *Call) use(i int, a netip.Addr, topo *Topology) {
	col := &c.Columns[i]
	a = a.Unmap()
	if col.Host.Name == "" {
		if a == col.Addr && len(col.Addrs) == 0 {
			col.Addrs = []netip.Addr{a}
		}
		return
	}
	if n, ok := topo.Owner(a); !ok || n.Name != col.Host.Name {
		return
	}
	for _, x := range col.Addrs {
		if x == a {
			return
		}
	}
	if a == col.Addr {
		col.Addrs = append([]netip.Addr{a}, col.Addrs...)
		return
	}
	col.Addrs = append(col.Addrs, a)
	if !col.Addr.IsValid() {
		col.Addr = a
	}
}

// chainOf is the order a leg's messages cross the nodes: a walk from the
// node that sent the leg's first message, along the hops in the order
// they were first used. Nodes the walk does not reach (a point nobody
// captured in between) follow in order of first use.
func chainOf(lm []Message) []string {
	adj := map[string][]string{}
	var order []string
	add := func(a, b string) {
		if !contains(adj[a], b) {
			adj[a] = append(adj[a], b)
		}
	}
	for _, m := range lm {
		a, b := m.Sender.Name(), m.Receiver.Name()
		for _, n := range []string{a, b} {
			if !contains(order, n) {
				order = append(order, n)
			}
		}
		if a != b {
			add(a, b)
			add(b, a)
		}
	}
	var chain []string
	visited := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		visited[n] = true
		chain = append(chain, n)
		for _, x := range adj[n] {
			if !visited[x] {
				walk(x)
			}
		}
	}
	for _, n := range order {
		if !visited[n] {
			walk(n)
		}
	}
	return chain
}

// place returns the columns of a stream's ends: among the columns of each
// end's node the closest pair (a node the call crosses twice has two); a
// node the SIP never crossed (the TURN relay, a media relay address) gets
// a new column at the right.
func (c *Call) place(a, b End, topo *Topology) (int, int) {
	colsOf := func(e End) []int {
		var out []int
		for i, col := range c.Columns {
			if col.Title() == e.Name() || (col.Host.Name == "" && col.Addr == e.Addr) {
				out = append(out, i)
			}
		}
		if len(out) == 0 {
			h := Host{}
			if e.Node != "" {
				h = Host{Name: e.Node, Role: string(topo.RoleOf(e.Node))}
			}
			c.Columns = append(c.Columns, Column{Addr: e.Addr, Host: h, Addrs: []netip.Addr{e.Addr}})
			out = []int{len(c.Columns) - 1}
		}
		return out
	}
	as, bs := colsOf(a), colsOf(b)
	best := [2]int{as[0], bs[0]}
	for _, i := range as {
		for _, j := range bs {
			if abs(i-j) < abs(best[0]-best[1]) {
				best = [2]int{i, j}
			}
		}
	}
	return best[0], best[1]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// union is a small union-find.
type union struct{ parent []int }

func newUnion(n int) *union {
	u := &union{parent: make([]int, n)}
	for i := range u.parent {
		u.parent[i] = i
	}
	return u
}

func (u *union) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

// join merges the sets of i and j; the earlier index stays the root so
// groups keep the order of their first member.
func (u *union) join(i, j int) {
	a, b := u.find(i), u.find(j)
	if a == b {
		return
	}
	if a < b {
		u.parent[b] = a
	} else {
		u.parent[a] = b
	}
}

// natMessages marks, at each router that recorded both sides, the copy of
// a message after the router translated it: which address changed, and
// what its ALG rewrote inside the message.
func natMessages(msgs []Message, topo *Topology) {
	type key struct{ router, label, cseq, branch string }
	byKey := map[key][]int{}
	for i, m := range msgs {
		if !topo.IsRouter(m.Iface) {
			continue
		}
		k := key{PointNode(m.Iface), m.Label, m.Header("CSeq"), viaBranch(m.Header("Via"))}
		byKey[k] = append(byKey[k], i)
	}
	for _, idx := range byKey {
		for _, i := range idx {
			a := &msgs[i]
			if topo.PublicPoint(a.Iface) {
				continue
			}
			for _, j := range idx {
				b := &msgs[j]
				d := b.Time.Sub(a.Time)
				if !topo.PublicPoint(b.Iface) || d > sameWire || d < -sameWire {
					continue
				}
				// Outbound (the LAN copy went to the router): the WAN copy is
				// the translated one; inbound the LAN copy is.
				before, after := a, b
				if a.Receiver.Node != PointNode(a.Iface) {
					before, after = b, a
				}
				after.NAT = translation(before.Src, before.Dst, after.Src, after.Dst)
				after.ALG = rewrites(string(before.Payload), string(after.Payload))
				break
			}
		}
	}
}

// natStreams marks the translated copy of each RTP stream a router
// recorded on both sides (same SSRC, starting together).
func natStreams(streams []Stream, topo *Topology) {
	for i := range streams {
		a := &streams[i]
		if !topo.IsRouter(a.Iface) || topo.PublicPoint(a.Iface) {
			continue
		}
		for j := range streams {
			b := &streams[j]
			d := b.First.Sub(a.First)
			if b.Iface == a.Iface || PointNode(b.Iface) != PointNode(a.Iface) || !topo.PublicPoint(b.Iface) || b.SSRC != a.SSRC || d > sameWire || d < -sameWire {
				continue
			}
			before, after := a, b
			if a.Receiver.Node != PointNode(a.Iface) {
				before, after = b, a
			}
			after.NAT = translation(before.Src, before.Dst, after.Src, after.Dst)
			break
		}
	}
}

func translation(src0, dst0, src1, dst1 netip.AddrPort) string {
	var parts []string
	if src0 != src1 {
		parts = append(parts, fmt.Sprintf("%s ⇒ %s", src0, src1))
	}
	if dst0 != dst1 {
		parts = append(parts, fmt.Sprintf("to %s ⇒ %s", dst0, dst1))
	}
	return strings.Join(parts, ", ")
}

// rewrites names the header fields and SDP lines whose values differ
// between two copies of one message: what an ALG changed (a router without
// an ALG never touches the payload).
func rewrites(before, after string) string {
	if before == after {
		return ""
	}
	fields := func(s string) map[string][]string {
		out := map[string][]string{}
		head, body, _ := strings.Cut(s, "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		for _, l := range lines[1:] {
			name, v, ok := strings.Cut(l, ":")
			if ok {
				out[strings.TrimSpace(name)] = append(out[strings.TrimSpace(name)], strings.TrimSpace(v))
			}
		}
		for _, l := range strings.Split(body, "\n") {
			l = strings.TrimRight(l, "\r")
			if len(l) > 2 && l[1] == '=' {
				out[l[:2]] = append(out[l[:2]], l[2:])
			}
		}
		if len(lines) > 0 {
			out["start line"] = []string{lines[0]}
		}
		return out
	}
	fb, fa := fields(before), fields(after)
	var names []string
	for name, v := range fa {
		if strings.Join(v, "\n") != strings.Join(fb[name], "\n") {
			names = append(names, name)
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "ALG changed the message's bytes"
	}
	return "ALG rewrote " + strings.Join(names, ", ")
}
