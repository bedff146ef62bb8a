package ladder

import (
	"fmt"
	"io"
	"iter"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// A browser call's ICE and TURN traffic, next to its SIP.
//
// The browser's own SIP travels over WSS (TLS): no capture reads it, so a
// browser call's SIP in the ladder starts at the SBC, which turns it into
// an ordinary call on its core side. What the captures do read in the
// clear is the browser's STUN: Binding requests to the lab's STUN server
// (its server-reflexive candidate), TURN Allocate/Refresh/CreatePermission/
// ChannelBind (its relay candidate), and the ICE connectivity checks it
// sends to the SBC's WebRTC gateway, which is ICE-lite and only answers.
// Nothing in those packets names the call (the ICE ufrags are in the SDP
// on the encrypted WSS leg), so attachSTUN associates them by what is on
// the wire:
//
//   - the gateway: a STUN message to or from an address of a node with the
//     SBC role that is a column of this call (the gateway answers on the
//     SBC's own address, UDP 8443), seen from the call's first SIP message
//     on — the browser checks once it has the SDP answer, so never before
//     the SBC forwarded the INVITE;
//   - its peers, the browser's sockets as each capture point saw them: the
//     far end of those checks (192.168.9.10:x at router-w/lan,
//     203.0.113.9:y at router-w/wan; a relayed check's TURN relay
//     address), and the client of a TURN request whose XOR-PEER-ADDRESS is
//     the gateway (CreatePermission, ChannelBind, Send: the browser asking
//     the relay to reach the gateway). Sockets, not addresses: the browser
//     opens new ones for every call, so the previous call's last Refresh is
//     not this one's; a symmetric NAT's other outside port (towards the
//     STUN server) joins through the router's copies of one transaction,
//     whose ID survives NAT;
//   - the browser's side: every STUN message and ChannelData frame to or
//     from a peer that is not a STUN/TURN server (the lab's server, or a
//     dead one the page was given), from iceLead before the call's first
//     SIP (gathering comes before the offer is sent). A relay address is a
//     peer only for the checks it relays: other clients of the same TURN
//     server are not the browser.
//
// Only an INVITE dialog that was not rejected or cancelled gets STUN (the
// SBC's first INVITE, challenged by the proxy and retried as another
// dialog, would otherwise borrow its retry's). All of it ends rtpSlack
// after the call's last SIP message when the call is over; a call still up keeps what follows (consent checks run every
// few seconds until the browser hangs up). Two browser calls through one
// SBC at the same moment from one site would share their STUN: the lab's
// browser site places one call at a time.
//
// Repetition is collapsed as RTP is: the first exchange of each kind (a
// Binding check on one path, with or without USE-CANDIDATE, answered or
// not; an Allocate that got 401; a Refresh) is drawn message by message,
// every later exchange of that kind is counted in one STUNRun row, and
// ChannelData (relayed media) is only counted, like an RTP stream.

// iceLead is how long before a call's first SIP message the browser may
// gather candidates from the STUN/TURN server: the offer goes out only
// when gathering is done (a TURN server that does not answer costs a few
// seconds).
const iceLead = 10 * time.Second

// STUNRun counts the repetitions of one kind of STUN exchange, or the
// ChannelData frames of one relayed flow, on one hop.
type STUNRun struct {
	// Label names what repeats: "Binding request", "Refresh request",
	// "ChannelData 0x4001".
	Label string
	// Exchanges are the transactions counted after the drawn first one
	// (for ChannelData: frames), Answered how many of them got a response,
	// Retransmits the requests sent again within a transaction.
	Exchanges, Answered, Retransmits int
	First, Last                      time.Time
	Iface                            string
	Src, Dst                         netip.AddrPort
	From, To                         int
	Sender, Receiver                 End
	// Seen lists every capture point that recorded the run, Iface first.
	Seen []string
	// Bytes is ChannelData's relayed payload, 0 for STUN.
	Bytes int
}

// Where names the capture point the run is shown at, as Stream.Where.
func (r STUNRun) Where() string {
	return Stream{Iface: r.Iface, Seen: r.Seen}.Where()
}

// Every is the mean interval between the run's exchanges ("every 2.5
// s", "every 12 ms"), "" with fewer than two.
func (r STUNRun) Every() string {
	if r.Exchanges < 2 {
		return ""
	}
	d := r.Last.Sub(r.First) / time.Duration(r.Exchanges-1)
	if d < time.Second {
		return fmt.Sprintf("every %d ms", d.Milliseconds())
	}
	return fmt.Sprintf("every %.1f s", d.Seconds())
}

// stunWindow is where the call's STUN can be: gateway checks from from,
// the STUN/TURN server's exchanges from lead, both until to.
func (c *Call) stunWindow() (lead, from, to time.Time) {
	to = time.Unix(0, math.MaxInt64)
	switch c.State() {
	case "in call (no BYE seen)", "no final response", "BYE sent, never answered":
	default:
		to = c.End.Add(rtpSlack)
	}
	return c.Start.Add(-iceLead), c.Start, to
}

// stunOnly is the STUN and ChannelData of a trace's media plane, in
// order: picked once, not once per call.
func stunOnly(rtp []capture.Packet) []capture.Packet {
	var out []capture.Packet
	for _, p := range rtp {
		if (p.Kind == capture.KindSTUN || p.Kind == capture.KindChannelData) && p.STUN != nil {
			out = append(out, p)
		}
	}
	return out
}

// attachSTUN keeps the call's STUN and ChannelData (see above) and lays
// them out: new columns for the browser's side go just left of the SBC.
func (c *Call) attachSTUN(pkts iter.Seq[*capture.Packet], topo *Topology) {
	// A dialog that was turned down never carried the browser's media:
	// the SBC's first INVITE challenged by the proxy (its retry is another
	// dialog), a callee who declined. The browser checks only once it has
	// an answer, so such a dialog's span would only borrow the real one's.
	if !c.IsInvite() || strings.HasPrefix(c.State(), "rejected") || strings.HasPrefix(c.State(), "cancelled") {
		return
	}
	gw := map[string]bool{}
	gwCol := -1
	for i, col := range c.Columns {
		if col.Host.Name != "" && topo.RoleOf(col.Host.Name) == RoleSBC {
			gw[col.Host.Name] = true
			if gwCol < 0 {
				gwCol = i
			}
		}
	}
	if len(gw) == 0 {
		return
	}
	roleOf := func(a netip.Addr) (Role, string) {
		n, ok := topo.Owner(a)
		if !ok {
			return "", ""
		}
		return n.Role, n.Name
	}
	isGW := func(a netip.Addr) bool {
		_, name := roleOf(a)
		return gw[name]
	}
	isServer := func(a netip.Addr) bool { r, _ := roleOf(a); return r == RoleSTUN }

	lead, from, to := c.stunWindow()
	var cand []capture.Packet
	// peers are the browser's sockets as each capture point saw them
	// (192.168.9.10:x on the LAN, 203.0.113.9:y behind the NAT): the far
	// end of a check to the gateway, the client of a TURN request for it.
	// A socket, not an address: the browser opens new ones for each call,
	// and the last call's Refresh that releases its relay is not this one's.
	peers := map[netip.AddrPort]bool{}
	for p := range pkts {
		if p.Time.Before(lead) || p.Time.After(to) {
			continue
		}
		s, d := p.Src.Addr(), p.Dst.Addr()
		switch {
		case p.Kind == capture.KindSTUN && (isGW(s) || isGW(d)):
			if p.Time.Before(from) {
				continue
			}
			if isGW(s) {
				peers[p.Dst] = true
			} else {
				peers[p.Src] = true
			}
		case p.Kind == capture.KindSTUN && p.STUN.Peer.IsValid() && isGW(p.STUN.Peer.Addr()):
			// A TURN request or indication for the gateway: its client is
			// the browser.
			if p.STUN.Class == capture.STUNRequest || p.STUN.Class == capture.STUNIndication {
				peers[p.Src] = true
			} else {
				peers[p.Dst] = true
			}
		}
		cand = append(cand, *p)
	}
	// A peer that is not a STUN/TURN server is the browser's side: all its
	// STUN in the window is the call's (a dead STUN server included); a
	// relay address is a peer only for what it relays to the gateway.
	client := func(a netip.AddrPort) bool { return peers[a] && !isServer(a.Addr()) && !isGW(a.Addr()) }
	mine := func(p *capture.Packet) bool {
		return isGW(p.Src.Addr()) || isGW(p.Dst.Addr()) || client(p.Src) || client(p.Dst)
	}
	// A symmetric NAT gives the browser's socket another outside port
	// towards the STUN server than towards the gateway: the router's two
	// copies of one transaction (the ID survives NAT) join that port to
	// the peers, and with it the ChannelData sent from it.
	txs := map[string]bool{}
	for i := range cand {
		if p := &cand[i]; p.Kind == capture.KindSTUN && mine(p) {
			txs[p.STUN.Transaction] = true
		}
	}
	for i := range cand {
		if p := &cand[i]; p.Kind == capture.KindSTUN && !mine(p) && txs[p.STUN.Transaction] {
			for _, a := range []netip.AddrPort{p.Src, p.Dst} {
				if !isServer(a.Addr()) && !isGW(a.Addr()) {
					peers[a] = true
				}
			}
		}
	}
	var stunPkts, chanData []capture.Packet
	for _, p := range cand {
		if !mine(&p) {
			continue
		}
		if p.Kind == capture.KindChannelData {
			chanData = append(chanData, p)
		} else {
			stunPkts = append(stunPkts, p)
		}
	}
	if len(stunPkts)+len(chanData) == 0 {
		return
	}

	msgs := dedupe(stunPkts, topo)
	for i := range msgs {
		m := &msgs[i]
		m.Request = m.STUN.Class == capture.STUNRequest
		m.Sender, m.Receiver = topo.Hop(m.Iface, m.Src.Addr(), m.Dst.Addr())
		// What is one message on both sides of a router: for SIP its
		// label, CSeq and branch, for STUN its transaction ID and class
		// (end to end; NAT rewrites addresses, never the STUN message).
		m.Label = m.STUN.Transaction + " " + m.STUN.Class
	}
	natMessages(msgs, topo)
	for i := range msgs {
		msgs[i].Label = msgs[i].STUN.Label()
	}
	drawn, runs := collapse(msgs)
	runs = append(runs, channelRuns(chanData, topo)...)
	for i := range runs {
		r := &runs[i]
		if r.Sender == (End{}) {
			r.Sender, r.Receiver = topo.Hop(r.Iface, r.Src.Addr(), r.Dst.Addr())
		}
	}

	var ends []End
	for _, m := range drawn {
		ends = append(ends, m.Sender, m.Receiver)
	}
	for _, r := range runs {
		ends = append(ends, r.Sender, r.Receiver)
	}
	c.insertColumns(ends, gwCol, topo)
	for i := range drawn {
		m := &drawn[i]
		m.From, m.To = c.place(m.Sender, m.Receiver, topo)
		c.use(m.From, m.Src.Addr(), topo)
		c.use(m.To, m.Dst.Addr(), topo)
	}
	for i := range runs {
		r := &runs[i]
		r.From, r.To = c.place(r.Sender, r.Receiver, topo)
		c.use(r.From, r.Src.Addr(), topo)
		c.use(r.To, r.Dst.Addr(), topo)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].First.Before(runs[j].First) })
	c.STUN, c.STUNRuns = drawn, runs
}

// insertColumns gives every end no column shows yet a column just left of
// column at (the SBC's), in the order a packet from the browser crosses
// them: the site's hosts, its router, the STUN/TURN server.
func (c *Call) insertColumns(ends []End, at int, topo *Topology) {
	has := func(e End) bool {
		for _, col := range c.Columns {
			if col.Title() == e.Name() || (col.Host.Name == "" && col.Addr == e.Addr) {
				return true
			}
		}
		return false
	}
	var add []End
	seen := map[string]bool{}
	for _, e := range ends {
		if !seen[e.Name()] && !has(e) {
			seen[e.Name()] = true
			add = append(add, e)
		}
	}
	rank := func(e End) int {
		if e.Node == "" && !e.Addr.IsPrivate() {
			return 2 // an unnamed internet address: a STUN server nobody runs
		}
		switch topo.RoleOf(e.Node) {
		case RoleRouter:
			return 1
		case RoleSTUN:
			return 2
		case "", RolePhone:
			return 0
		}
		return 3
	}
	sort.SliceStable(add, func(i, j int) bool { return rank(add[i]) < rank(add[j]) })
	for k, e := range add {
		h := Host{}
		if e.Node != "" {
			h = Host{Name: e.Node, Role: string(topo.RoleOf(e.Node))}
		}
		c.insertColumn(at+k, Column{Addr: e.Addr, Host: h, Addrs: []netip.Addr{e.Addr}})
	}
}

// insertColumn puts col at index i, moving every arrow's column index
// at or after it.
func (c *Call) insertColumn(i int, col Column) {
	c.Columns = append(c.Columns, Column{})
	copy(c.Columns[i+1:], c.Columns[i:])
	c.Columns[i] = col
	shift := func(x *int) {
		if *x >= i {
			*x++
		}
	}
	for k := range c.Messages {
		shift(&c.Messages[k].From)
		shift(&c.Messages[k].To)
	}
	for k := range c.Streams {
		shift(&c.Streams[k].From)
		shift(&c.Streams[k].To)
	}
	for k := range c.Legs {
		for j := range c.Legs[k].Columns {
			shift(&c.Legs[k].Columns[j])
		}
	}
}

// collapse keeps the messages of the first exchange of each kind and
// counts the rest. A kind is the request's method, USE-CANDIDATE, the
// answer it got, and the hops its request took (every capture point's
// addresses): a keepalive check on one candidate pair is one kind, the
// nominating check another, an Allocate answered 401 another than the
// one answered with a relay address.
func collapse(msgs []Message) ([]Message, []STUNRun) {
	type tx struct {
		id   string
		msgs []int
	}
	var txs []*tx
	byID := map[string]*tx{}
	for i, m := range msgs {
		id := m.STUN.Transaction
		if m.STUN.Class == capture.STUNIndication {
			id = fmt.Sprintf("%s/%d", id, i) // an indication stands alone
		}
		t := byID[id]
		if t == nil {
			t = &tx{id: id}
			byID[id] = t
			txs = append(txs, t)
		}
		t.msgs = append(t.msgs, i)
	}
	kindOf := func(t *tx) string {
		var hops []string
		method, outcome := "", "unanswered"
		for _, i := range t.msgs {
			m := msgs[i]
			switch m.STUN.Class {
			case capture.STUNRequest, capture.STUNIndication:
				method = m.STUN.MethodName() + " " + m.STUN.Class
				if m.STUN.UseCandidate {
					method += " USE-CANDIDATE"
				}
				hop := m.Iface + " " + m.Src.String() + " " + m.Dst.String()
				if !contains(hops, hop) {
					hops = append(hops, hop)
				}
			case capture.STUNSuccess:
				outcome = "success"
			case capture.STUNError:
				outcome = fmt.Sprint(m.STUN.ErrorCode)
			}
		}
		if method == "" { // a response whose request no capture point saw
			method = msgs[t.msgs[0]].STUN.MethodName() + " response"
		}
		sort.Strings(hops)
		return method + "\x00" + outcome + "\x00" + strings.Join(hops, "\x00")
	}
	var drawn []Message
	runOf := map[string]*STUNRun{}
	var order []string
	for _, t := range txs {
		k := kindOf(t)
		r, seen := runOf[k]
		if !seen {
			// The first exchange of its kind: drawn, one copy per capture
			// point and class; its retransmissions counted in the run.
			first := msgs[t.msgs[0]]
			r = &STUNRun{Label: first.STUN.MethodName() + " " + first.STUN.Class, Iface: first.Iface, Src: first.Src, Dst: first.Dst,
				Sender: first.Sender, Receiver: first.Receiver, Seen: first.Seen}
			for _, i := range t.msgs {
				m := msgs[i]
				if m.STUN.Class == capture.STUNRequest || m.STUN.Class == capture.STUNIndication {
					r.Receiver = m.Receiver // the request's last hop
				}
			}
			if first.STUN.UseCandidate {
				r.Label += " USE-CANDIDATE"
			}
			runOf[k] = r
			order = append(order, k)
			got := map[string]bool{}
			for _, i := range t.msgs {
				m := msgs[i]
				if key := m.Iface + " " + m.STUN.Class; !got[key] {
					got[key] = true
					drawn = append(drawn, m)
				} else if m.STUN.Class == capture.STUNRequest && m.Iface == r.Iface {
					// Counted where the run is shown, once per resend.
					r.Retransmits++
					if r.First.IsZero() {
						r.First = m.Time
					}
					r.Last = m.Time
				}
			}
			continue
		}
		r.Exchanges++
		answered := false
		got := map[string]bool{}
		for _, i := range t.msgs {
			m := msgs[i]
			if r.First.IsZero() || m.Time.Before(r.First) {
				r.First = m.Time
			}
			if m.Time.After(r.Last) {
				r.Last = m.Time
			}
			switch m.STUN.Class {
			case capture.STUNSuccess, capture.STUNError:
				answered = true
			case capture.STUNRequest:
				if got[m.Iface] && m.Iface == r.Iface {
					r.Retransmits++
				}
				got[m.Iface] = true
			}
		}
		if answered {
			r.Answered++
		}
	}
	var runs []STUNRun
	for _, k := range order {
		if r := runOf[k]; r.Exchanges > 0 || r.Retransmits > 0 {
			runs = append(runs, *r)
		}
	}
	sort.SliceStable(drawn, func(i, j int) bool { return drawn[i].Time.Before(drawn[j].Time) })
	return drawn, runs
}

// channelRuns counts ChannelData frames per capture point, direction and
// channel, one flow seen at two points on one link counted once: the
// frames of a channel are a stream like RTP's, the channel its SSRC, so
// dedupeStreams merges them.
func channelRuns(pkts []capture.Packet, topo *Topology) []STUNRun {
	type key struct {
		iface    string
		src, dst netip.AddrPort
		ch       uint32
	}
	byKey := map[key]*Stream{}
	bytes := map[key]int{}
	var streams []*Stream
	for _, p := range pkts {
		k := key{p.Iface, p.Src, p.Dst, uint32(p.STUN.Channel)}
		s := byKey[k]
		if s == nil {
			s = &Stream{Iface: p.Iface, Src: p.Src, Dst: p.Dst, SSRC: k.ch, First: p.Time, Seen: []string{p.Iface}}
			byKey[k] = s
			streams = append(streams, s)
		}
		s.Packets++
		s.Last = p.Time
		bytes[k] += p.STUN.DataLen
	}
	in := make([]Stream, len(streams))
	for i, s := range streams {
		in[i] = *s
	}
	var out []STUNRun
	for _, s := range dedupeStreams(in, topo) {
		out = append(out, STUNRun{Label: fmt.Sprintf("ChannelData 0x%x", s.SSRC), Exchanges: s.Packets,
			Bytes: bytes[key{s.Iface, s.Src, s.Dst, s.SSRC}], First: s.First, Last: s.Last,
			Iface: s.Iface, Src: s.Src, Dst: s.Dst, Seen: s.Seen})
	}
	return out
}

// stunNote is what a STUN arrow's trailer adds to its addresses: the ICE
// and TURN attributes a reader checks.
func stunNote(s *capture.STUNMessage) string {
	var parts []string
	if s.UseCandidate {
		parts = append(parts, "USE-CANDIDATE")
	}
	if s.Username != "" {
		parts = append(parts, "user "+s.Username)
	}
	if s.Controlling {
		parts = append(parts, "controlling")
	}
	if s.Controlled {
		parts = append(parts, "controlled")
	}
	if s.Priority != 0 {
		parts = append(parts, fmt.Sprintf("prio %d", s.Priority))
	}
	if s.Mapped.IsValid() {
		parts = append(parts, "mapped "+s.Mapped.String())
	}
	if s.Relayed.IsValid() {
		parts = append(parts, "relayed "+s.Relayed.String())
	}
	if s.Peer.IsValid() {
		parts = append(parts, "peer "+s.Peer.String())
	}
	if s.Channel != 0 {
		parts = append(parts, fmt.Sprintf("channel 0x%x", s.Channel))
	}
	if s.Lifetime >= 0 {
		parts = append(parts, fmt.Sprintf("lifetime %d s", s.Lifetime))
	}
	return strings.Join(parts, ", ")
}

// runLabel is a run's arrow label: "+41 Binding request", "ChannelData
// 0x4001 1520 frames".
func runLabel(r STUNRun) string {
	if strings.HasPrefix(r.Label, "ChannelData") {
		return fmt.Sprintf("ChannelData ×%d", r.Exchanges)
	}
	if r.Exchanges == 0 {
		return fmt.Sprintf("%s resent %d×", r.Label, r.Retransmits)
	}
	return fmt.Sprintf("+%d %s", r.Exchanges, r.Label)
}

// runNote is a run's trailer: how many were answered, how often, until when.
func runNote(r STUNRun, start time.Time) string {
	if strings.HasPrefix(r.Label, "ChannelData") {
		return fmt.Sprintf("%s: %d frames, %d bytes relayed, %.3f–%.3f s", r.Label, r.Exchanges, r.Bytes, r.First.Sub(start).Seconds(), r.Last.Sub(start).Seconds())
	}
	var parts []string
	if r.Exchanges > 0 {
		if !strings.Contains(r.Label, "indication") {
			parts = append(parts, fmt.Sprintf("%d answered", r.Answered))
		}
		if e := r.Every(); e != "" {
			parts = append(parts, e)
		}
		parts = append(parts, fmt.Sprintf("last at %.3f s", r.Last.Sub(start).Seconds()))
	}
	if r.Retransmits > 0 {
		parts = append(parts, fmt.Sprintf("%d retransmissions", r.Retransmits))
	}
	return strings.Join(parts, ", ")
}

// stunEvents are the ladder rows of the call's STUN: each drawn message,
// each run where its counting starts.
func (c *Call) stunEvents() []event {
	var ev []event
	for i := range c.STUN {
		ev = append(ev, event{at: c.STUN[i].Time, stun: &c.STUN[i]})
	}
	for i := range c.STUNRuns {
		ev = append(ev, event{at: c.STUNRuns[i].First, run: &c.STUNRuns[i]})
	}
	return ev
}

// writeSTUNRow draws a STUN row of the text ladder: a message as a '~'
// arrow with its attributes, a run as a ':' arrow with its count.
func writeSTUNRow(w io.Writer, c *Call, e event, width int) {
	rel := e.at.Sub(c.Start).Seconds()
	if m := e.stun; m != nil {
		fmt.Fprintln(w, labelRow(len(c.Columns), width, m.From, m.To, m.Label))
		row := arrowRow(len(c.Columns), width, m.From, m.To, '~')
		copy(row, []rune(fmt.Sprintf("%8.3f", rel)))
		note := stunNote(m.STUN)
		if note != "" {
			note = "  " + note
		}
		fmt.Fprintf(w, "%s  %s %s → %s%s%s\n", string(row), m.Where(), m.Src, m.Dst, note, natNote(m.NAT, ""))
		return
	}
	r := e.run
	fmt.Fprintln(w, labelRow(len(c.Columns), width, r.From, r.To, runLabel(*r)))
	row := arrowRow(len(c.Columns), width, r.From, r.To, ':')
	copy(row, []rune(fmt.Sprintf("%8.3f", rel)))
	fmt.Fprintf(w, "%s  %s %s → %s  %s\n", string(row), r.Where(), r.Src, r.Dst, runNote(*r, c.Start))
}

// writeSTUNSummary lists a browser call's STUN exchanges and relayed
// media after the ladder.
func writeSTUNSummary(w io.Writer, c *Call) {
	if len(c.STUN)+len(c.STUNRuns) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSTUN (ICE checks, STUN/TURN server): %d messages drawn", len(c.STUN))
	if len(c.STUNRuns) > 0 {
		fmt.Fprint(w, ", repeated:")
	}
	fmt.Fprintln(w)
	for _, r := range c.STUNRuns {
		what := runLabel(r) + "; " + runNote(r, c.Start)
		if strings.HasPrefix(r.Label, "ChannelData") {
			what = runNote(r, c.Start)
		}
		fmt.Fprintf(w, "  %-13s %s %s → %s %s  %s\n", r.Where(), c.Columns[r.From].Title(), r.Src,
			c.Columns[r.To].Title(), r.Dst, what)
	}
}

// htmlSTUN is what a STUN row's panel shows: the message's attributes, or
// the run's counts.
type htmlSTUN struct {
	Transaction string
	Facts       [][2]string // attribute, value
	Run         *STUNRun
	Note        string
}

// stunHTMLRow fills an HTML row for a STUN event and returns its columns.
func stunHTMLRow(r *htmlRow, e event, start time.Time) (from, to int) {
	if m := e.stun; m != nil {
		r.Kind, r.Label = "stun", m.Label
		r.Where, r.Also = m.Iface, m.Also()
		r.Src, r.Dst = m.Src.String(), m.Dst.String()
		r.NAT, r.NATText = natPieces(m.NAT), m.NAT
		r.Problem = m.STUN.Class == capture.STUNError && m.STUN.ErrorCode != 401
		hs := &htmlSTUN{Transaction: m.STUN.Transaction}
		if m.STUN.UseCandidate {
			r.SDP = "USE-CANDIDATE"
		}
		for _, f := range strings.Split(stunNote(m.STUN), ", ") {
			if f == "USE-CANDIDATE" {
				continue
			}
			if k, v, ok := strings.Cut(f, " "); ok {
				hs.Facts = append(hs.Facts, [2]string{k, v})
			} else if f != "" {
				hs.Facts = append(hs.Facts, [2]string{f, "yes"})
			}
		}
		if m.STUN.UseCandidate {
			hs.Facts = append(hs.Facts, [2]string{"USE-CANDIDATE", "the controlling side nominates this pair"})
		}
		if m.STUN.Class == capture.STUNError {
			hs.Facts = append(hs.Facts, [2]string{"error", fmt.Sprintf("%d %s", m.STUN.ErrorCode, m.STUN.ErrorReason)})
		}
		r.STUN = hs
		return m.From, m.To
	}
	run := *e.run
	r.Kind, r.Label = "stunrun", runLabel(run)
	r.Where, r.Src, r.Dst = run.Iface, run.Src.String(), run.Dst.String()
	for _, p := range run.Seen {
		if p != run.Iface {
			r.Also = append(r.Also, p)
		}
	}
	r.STUN = &htmlSTUN{Run: &run, Note: runNote(run, start)}
	return run.From, run.To
}

// addICEPorts adds to ports the gateway's side of the call's ICE checks
// (the SBC's 8443): the browser's SRTP flows on the pair ICE chose, and
// its ports are in the SDP of the WSS leg, which no capture reads, so the
// checks are what names them. attachSTUN runs first for this.
func (c *Call) addICEPorts(ports map[uint16]bool) map[uint16]bool {
	gw := func(e End) bool { return e.Node != "" && c.Topo.RoleOf(e.Node) == RoleSBC }
	for _, m := range c.STUN {
		switch {
		case gw(m.Sender):
			ports[m.Src.Port()] = true
		case gw(m.Receiver):
			ports[m.Dst.Port()] = true
		}
	}
	return ports
}
