package ladder

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
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
	var calls []*Call
	stun := stunOnly(tr.RTP)
	for _, legMsgs := range group(tr.SIP, topo) {
		c := &Call{Topo: topo}
		c.assemble(legMsgs, topo)
		c.attachSTUN(allRTP(stun), topo)
		c.attachRTP(allRTP(tr.RTP), topo)
		calls = append(calls, c)
	}
	order(calls)
	return calls
}

// allRTP yields every packet of a trace's RTP, in order.
func allRTP(rtp []capture.Packet) iter.Seq[*capture.Packet] {
	return func(yield func(*capture.Packet) bool) {
		for i := range rtp {
			if !yield(&rtp[i]) {
				return
			}
		}
	}
}

// order sorts calls by their first message and numbers the INVITE calls
// 1, 2, … in that order.
func order(calls []*Call) {
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	n := 0
	for _, c := range calls {
		c.N = 0
		if c.IsInvite() {
			n++
			c.N = n
		}
	}
}

// group turns a trace's SIP (in time order) into messages, legs and
// calls: each call's legs, each leg's messages.
func group(sip []capture.Packet, topo *Topology) [][][]Message {
	// One packet seen at two capture points on one link is one message.
	msgs := dedupe(sip, topo)
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
	legs := legOf.groups() // message indexes of each leg, in time order

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
	groups := callOf.groups() // legs of each call

	out := make([][][]Message, 0, len(groups))
	for _, g := range groups {
		var legMsgs [][]Message
		for _, l := range g {
			var lm []Message
			for _, i := range legs[l] {
				lm = append(lm, msgs[i])
			}
			legMsgs = append(legMsgs, lm)
		}
		out = append(out, legMsgs)
	}
	return out
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
			// The cause arrives before the effect leaves; every capture
			// point runs on the lab host's clock, so only a copy recorded a
			// hair late at another point may seem to follow it.
			if a.leg == s.leg || d < -time.Millisecond || d > handover {
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
	paths := make([]legPath, len(legMsgs))
	legCols := make([][]*col, len(legMsgs))
	for li, lm := range legMsgs {
		paths[li] = pathOf(lm)
		chain := paths[li].nodes
		legCols[li] = make([]*col, len(chain))
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
				legCols[li][j] = cols[k+j]
			}
			pos := k + run
			for j := run; j < len(chain); j++ {
				legCols[li][j] = at(pos, ends[chain[j]])
				pos++
			}
		case len(cols) > 0 && chain[len(chain)-1] == cols[0].end.Name():
			// The leg ends where the ladder starts: it comes first.
			legCols[li][len(chain)-1] = cols[0]
			for j, name := range chain[:len(chain)-1] {
				legCols[li][j] = at(j, ends[name])
			}
		default:
			for j, name := range chain {
				legCols[li][j] = at(len(cols), ends[name])
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
		for j, name := range paths[li].nodes {
			leg.Nodes = append(leg.Nodes, name)
			leg.Columns = append(leg.Columns, index[legCols[li][j]])
		}
		for _, ci := range leg.Columns {
			if !slices.Contains(c.Columns[ci].Legs, leg.N) {
				c.Columns[ci].Legs = append(c.Columns[ci].Legs, leg.N)
			}
		}
		c.Legs = append(c.Legs, leg)
		for _, m := range lm {
			m.Leg = leg.N
			a, b := paths[li].hop(m)
			m.From, m.To = index[legCols[li][a]], index[legCols[li][b]]
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

// legPath is the order a leg's messages cross the nodes, a node crossed
// twice (the SBC sending to the proxy, which sends back to the SBC for a
// phone registered there) listed twice, and the direction the leg's
// initial request travelled.
type legPath struct {
	nodes   []string
	initTag string // From tag of the initial request: the caller's
}

// pathOf walks the leg's forward requests (the caller's, in the direction
// of the initial request) hop by hop, each transaction from the node that
// sent its first copy; the longest walk is the path (a challenged first
// INVITE stops at the proxy, its retry goes through). Nodes no walk
// reaches (a point nobody captured in between, a message off the path)
// follow in order of first use.
func pathOf(lm []Message) legPath {
	p := legPath{}
	for _, m := range lm {
		if m.Request {
			p.initTag = fromTag(m)
			break
		}
	}
	type tx struct{ copies []Message }
	byKey := map[string]*tx{}
	var order []string
	for _, m := range lm {
		if !m.Request || !p.forward(m) {
			continue
		}
		k := m.Method + "\x00" + m.Header("CSeq")
		if byKey[k] == nil {
			byKey[k] = &tx{}
			order = append(order, k)
		}
		byKey[k].copies = append(byKey[k].copies, m)
	}
	for _, k := range order {
		cs := byKey[k].copies
		walk := []string{cs[0].Sender.Name()}
		for _, m := range cs {
			if m.Sender.Name() == walk[len(walk)-1] && m.Receiver.Name() != m.Sender.Name() {
				walk = append(walk, m.Receiver.Name())
			}
		}
		if len(walk) > len(p.nodes) {
			p.nodes = walk
		}
	}
	for _, m := range lm {
		for _, n := range []string{m.Sender.Name(), m.Receiver.Name()} {
			if !contains(p.nodes, n) {
				p.nodes = append(p.nodes, n)
			}
		}
	}
	return p
}

// forward reports whether a message travels in the direction of the leg's
// initial request: a request from the caller's side, or a response to a
// request from the callee's side (the From tag names who sent the request
// a response answers).
func (p legPath) forward(m Message) bool {
	if p.initTag == "" {
		return m.Request
	}
	return m.Request == (fromTag(m) == p.initTag)
}

// hop returns the positions in the path of a message's sender and
// receiver: the pair of neighbours in the message's direction, else in
// the other, else the closest occurrences of the two nodes.
func (p legPath) hop(m Message) (int, int) {
	a, b := m.Sender.Name(), m.Receiver.Name()
	n := p.nodes
	fwd := p.forward(m)
	for pass := 0; pass < 2; pass++ {
		for i := range n {
			if n[i] != a {
				continue
			}
			if fwd && i+1 < len(n) && n[i+1] == b {
				return i, i + 1
			}
			if !fwd && i > 0 && n[i-1] == b {
				return i, i - 1
			}
		}
		fwd = !fwd
	}
	best := [2]int{-1, -1}
	for i := range n {
		for j := range n {
			if n[i] == a && n[j] == b && (best[0] < 0 || abs(i-j) < abs(best[0]-best[1])) {
				best = [2]int{i, j}
			}
		}
	}
	return best[0], best[1]
}

// fromTag is the tag parameter of a message's From header.
func fromTag(m Message) string {
	for _, p := range strings.Split(m.Header("From"), ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "tag") {
			return v
		}
	}
	return ""
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

// groups lists the members of each set in index order, the sets in the
// order of their first member.
func (u *union) groups() [][]int {
	idx := map[int]int{}
	var out [][]int
	for i := range u.parent {
		r := u.find(i)
		g, ok := idx[r]
		if !ok {
			g = len(out)
			idx[r] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], i)
	}
	return out
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
