// Package ladder turns captured SIP and RTP (capture.Trace) into calls: the
// messages of one call across every capture point, in time order, laid out
// on the lab's topology (Topology, Lab) ready to draw as a ladder (text or
// HTML).
//
// The model follows sngrep — a call keyed by Call-ID, related legs grouped
// into one flow, host aliases merged into one column — with the lab's
// network made explicit: columns are nodes in the order the call crosses
// them (phone, router, SBC, proxy, PBX, carrier, router, phone; a node
// crossed twice has two columns), and every arrow is one hop on one wire,
// from the node that sent the packet there to the node that received it
// (a router's LAN copy of an INVITE is router → phone, with the NAT's
// translation marked). The legs a B2BUA makes of one call are joined by
// the X-Siplab-Call header (the PBX, the SBC's core side) and by the
// INVITE a B2BUA sends just after one arrives (the SBC's access side,
// which carries no correlation by design); the copies of a message whose
// Call-ID a broken ALG rewrote are joined by top Via branch and CSeq.
//
// A browser call's STUN (its candidate gathering with the STUN/TURN server
// and its ICE checks with the SBC's WebRTC gateway) is drawn next to the
// SIP, the first exchange of each kind message by message and the repeats
// counted (stun.go says how a STUN packet is tied to a call).
package ladder

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// ErrNoCalls is returned when a trace holds no SIP dialog at all.
var ErrNoCalls = errors.New("ladder: no SIP calls in the capture")

// ErrNoSuchCall is returned by Find for a selector matching no call.
var ErrNoSuchCall = errors.New("ladder: no such call")

// CorrelationHeader is the header the lab's B2BUA puts on both legs of a
// call (b2bua.CorrelationHeader; repeated here so this package does not
// import the PBX).
const CorrelationHeader = "X-Siplab-Call"

// Host names a column: the node and its role ("alice", "phone").
type Host struct {
	Name string
	Role string
}

// Message is one SIP message as seen at one capture point.
type Message struct {
	capture.Packet
	// Label is the method ("INVITE") or the status ("200 OK").
	Label string
	// Request is true for requests, false for responses.
	Request bool
	// Status is the response code (0 for requests).
	Status int
	// Method is the request method, or for a response the CSeq method.
	Method string
	// CallID is the Call-ID as seen at this point (an ALG may change it).
	CallID string
	// SDP is true when the message carries an SDP body.
	SDP bool
	// From and To are the column indexes of the hop's two ends: the node
	// that sent the packet on the wire it was captured on, and the node
	// that received it there (Topology.Hop). Always adjacent columns
	// unless the call fans out (a transfer, a fork).
	From, To int
	// Sender and Receiver are the hop's ends by node.
	Sender, Receiver End
	// Leg is the 1-based leg (dialog) of the call the message belongs to.
	Leg int
	// NAT is the translation a router made to this packet, shown on the
	// copy after it ("192.168.1.50:5060 ⇒ 203.0.113.2:5060"); "" when
	// none. ALG names what a router's ALG rewrote inside the message
	// besides the addresses NAT changes ("Contact, c="); "" when nothing.
	NAT, ALG string
	// Seen lists every capture point that saw this very packet (the same
	// bytes on the same link: a phone and its router both record the LAN),
	// Iface first among them being the one shown.
	Seen []string
}

// Column is one node in the ladder, in the order the call crosses them:
// every address of one named node (the proxy's internet and core sides, a
// router's LAN and WAN) is one lane, the way sngrep merges host aliases. A
// node the call crosses twice (the proxy before and after the PBX, the SBC
// on the phone's and on the trunk's side) has one column per crossing.
type Column struct {
	// Addr is the node's face: a router's public address, otherwise the
	// first address of the node the call used.
	Addr netip.Addr
	Host Host // zero when the topology does not name the address
	// Addrs are every address of the node the call used, Addr first.
	Addrs []netip.Addr
	// Legs are the 1-based legs whose messages use this column.
	Legs []int
}

// Title is the column's header: its name, or the bare address.
func (c Column) Title() string {
	if c.Host.Name != "" {
		return c.Host.Name
	}
	return c.Addr.String()
}

// Private reports whether the column's address is an RFC 1918 (or other
// non-routable) one: the addresses that must never appear on the internet
// side.
func (c Column) Private() bool { return c.Addr.IsPrivate() || c.Addr.IsLoopback() }

// Stream summarises one RTP stream at one capture point.
type Stream struct {
	Iface       string
	Src, Dst    netip.AddrPort
	SSRC        uint32
	PayloadType uint8
	Packets     int
	// Lost is the number of sequence numbers never seen between the first
	// and the last packet (reordering is not loss; duplicates count once).
	Lost        int
	First, Last time.Time
	From, To    int // column indexes of the hop's ends (as Message)
	// Sender and Receiver are the hop's ends by node.
	Sender, Receiver End
	// NAT is the translation a router made to the stream, on the copy
	// after it ("192.168.1.50:16000 ⇒ 203.0.113.2:16000").
	NAT string
	// Seen lists every capture point that recorded this stream on the
	// same link (a phone and its router), Iface first.
	Seen []string
}

// Leg is one dialog of a call: a B2BUA (the PBX, the SBC) ends one and
// starts the next; a call straight through the proxy has one.
type Leg struct {
	N       int    // 1-based, in order of the leg's first message
	CallID  string // the leg's Call-ID (first seen)
	From    string // user part of the initial request's From
	To      string // user part of its To
	Nodes   []string
	Columns []int // the column of each of Nodes
}

// Label is the leg's one-line description: "leg 2 pbx → bob (Call-ID 8f3a…)".
func (l Leg) Label() string {
	path := strings.Join(l.Nodes, " → ")
	id := l.CallID
	if len(id) > 12 {
		id = id[:12] + "…"
	}
	return fmt.Sprintf("leg %d %s → %s via %s (Call-ID %s)", l.N, l.From, l.To, path, id)
}

// Call is one call (or other dialog: a REGISTER, an OPTIONS) across every
// capture point.
type Call struct {
	// N is the call's number: INVITE calls are numbered once, in the
	// order they started, and keep their number (Number persists it in
	// the capture folder); 0 for registrations, pings and other dialogs.
	N int
	// ID is the Call-ID of the first message seen.
	ID string
	// CallIDs are every Call-ID the call's messages carry (B2BUA legs, or
	// the ALG's rewrite), first seen first.
	CallIDs []string
	// Messages in time order.
	Messages []Message
	// Streams are the RTP streams matched to the call's SDP ports.
	Streams []Stream
	Columns []Column
	// Legs are the call's dialogs in order; one for a call straight
	// through the proxy.
	Legs  []Leg
	Start time.Time
	End   time.Time
	// Topo is the lab plan the call was built with (never nil): readers
	// such as the doctor ask it which capture point is a router's, which
	// node owns an address.
	Topo *Topology

	// STUN are a browser call's STUN messages drawn one by one (the first
	// exchange of each kind: candidate gathering, TURN, ICE checks with
	// the SBC's gateway), Label its method and class; STUNRuns count the
	// exchanges that repeat them and the relayed ChannelData (stun.go).
	STUN     []Message
	STUNRuns []STUNRun
}

// IsInvite reports whether the call is an INVITE dialog (a "call" in the
// everyday sense, not a registration or a ping).
func (c *Call) IsInvite() bool {
	for _, m := range c.Messages {
		if m.Request && m.Method == "INVITE" {
			return true
		}
	}
	return false
}

// Kind is the call's first request method ("INVITE", "REGISTER").
func (c *Call) Kind() string {
	for _, m := range c.Messages {
		if m.Request {
			return m.Method
		}
	}
	if len(c.Messages) > 0 {
		return c.Messages[0].Method
	}
	return ""
}

// State derives the call state from its messages, as sngrep does:
// what the final response to the INVITE was and whether a BYE or CANCEL
// ended it.
func (c *Call) State() string {
	final, bye, byeOK, cancel := 0, false, false, false
	for _, m := range c.Messages {
		switch {
		case m.Request && m.Method == "BYE":
			bye = true
		case m.Request && m.Method == "CANCEL":
			cancel = true
		case !m.Request && m.Method == "BYE" && m.Status/100 == 2:
			byeOK = true
		case !m.Request && m.Method == c.Kind() && m.Status >= 200:
			// The last final response counts: a 401/407 challenge is
			// followed by the authenticated retry's answer.
			final = m.Status
		}
	}
	switch {
	case c.Kind() != "INVITE":
		if final == 0 {
			return "no final response"
		}
		return "final " + strconv.Itoa(final)
	case final == 0 && cancel:
		return "cancelled, no final response"
	case final == 0:
		return "no final response"
	case final == 487:
		return "cancelled (487)"
	case final/100 != 2:
		return "rejected " + strconv.Itoa(final)
	case byeOK:
		return "completed"
	case bye:
		return "BYE sent, never answered"
	}
	return "in call (no BYE seen)"
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func newMessage(p capture.Packet) Message {
	m := Message{Packet: p, CallID: p.Header("Call-ID")}
	line := p.StartLine()
	cseq := strings.Fields(p.Header("CSeq"))
	if len(cseq) == 2 {
		m.Method = cseq[1]
	}
	if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(rest, " ")
		m.Status, _ = strconv.Atoi(code)
		m.Label = strings.TrimSpace(code + " " + reason)
	} else {
		m.Request = true
		method, _, _ := strings.Cut(line, " ")
		m.Method, m.Label = method, method
	}
	m.SDP = strings.Contains(strings.ToLower(p.Header("Content-Type")), "application/sdp")
	return m
}

// viaBranch returns the branch parameter of a Via value ("" if none).
func viaBranch(via string) string {
	first, _, _ := strings.Cut(via, ",")
	for _, param := range strings.Split(first, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
		if strings.EqualFold(k, "branch") {
			return v
		}
	}
	return ""
}

// mediaPorts returns every UDP port an SDP body of the call announces in an
// m= line: RTP of the call uses these (the NAT routers keep ports).
func (c *Call) mediaPorts() map[uint16]bool {
	ports := map[uint16]bool{}
	for _, m := range c.Messages {
		if !m.SDP {
			continue
		}
		_, body, _ := strings.Cut(string(m.Payload), "\r\n\r\n")
		for _, l := range strings.Split(body, "\n") {
			l = strings.TrimSpace(l)
			if f := strings.Fields(strings.TrimPrefix(l, "m=")); strings.HasPrefix(l, "m=") && len(f) > 1 {
				if n, err := strconv.ParseUint(strings.Split(f[1], "/")[0], 10, 16); err == nil && n != 0 {
					ports[uint16(n)] = true
				}
			}
		}
	}
	return ports
}

// rtpWindow is where the call's RTP can be: the ports its SDP announced
// (and a browser call's gateway ICE port, stun.go) and the time span
// attachRTP keeps.
func (c *Call) rtpWindow() (ports map[uint16]bool, from, to time.Time) {
	return c.addICEPorts(c.mediaPorts()), c.Start, c.End.Add(rtpSlack)
}

// rtpSlack is how long after its last message a call's RTP may still run
// (the BYE can trail the last RTP, or the reverse).
const rtpSlack = 3 * time.Second

// attachRTP keeps the RTP packets whose source or destination port is one
// the call's SDP announced, seen between the first INVITE and a few seconds
// after the last message (the BYE can trail the last RTP, or the reverse).
// A port match is a heuristic: two calls reusing one port at the same time
// would be merged; the lab's phones use one port per phone.
func (c *Call) attachRTP(rtp iter.Seq[*capture.Packet], topo *Topology) {
	ports, from, to := c.rtpWindow()
	if len(ports) == 0 {
		return
	}
	// A call that ended with a BYE cannot start a stream afterwards: the
	// slack after its end is for its own last packets, and a stream that
	// starts then is the next call reusing the ports.
	over := c.State() == "completed"
	type key struct {
		iface    string
		src, dst netip.AddrPort
		ssrc     uint32
	}
	type acc struct {
		s       *Stream
		seen    map[uint32]bool
		ext     uint32 // extended sequence of the last packet
		min     uint32
		max     uint32
		started bool
	}
	byKey := map[key]*acc{}
	var order []key
	for p := range rtp {
		if p.Kind != capture.KindRTP || p.RTP == nil || p.Time.Before(from) || p.Time.After(to) {
			continue
		}
		if !ports[p.Src.Port()] && !ports[p.Dst.Port()] {
			continue
		}
		k := key{p.Iface, p.Src, p.Dst, p.RTP.SSRC}
		a := byKey[k]
		if a == nil && over && p.Time.After(c.End) {
			continue
		}
		if a == nil {
			a = &acc{s: &Stream{Iface: p.Iface, Src: p.Src, Dst: p.Dst, SSRC: p.RTP.SSRC,
				PayloadType: p.RTP.PayloadType, First: p.Time}, seen: map[uint32]bool{}}
			byKey[k] = a
			order = append(order, k)
		}
		// Extend the 16-bit sequence to 32 bits relative to the previous
		// packet so a wrap past 65535 is not counted as 65535 lost.
		seq := uint32(p.RTP.Seq)
		if !a.started {
			a.ext, a.min, a.max, a.started = seq, seq, seq, true
		} else {
			delta := int32(int16(uint16(seq) - uint16(a.ext)))
			a.ext = uint32(int64(a.ext) + int64(delta))
			a.min, a.max = min(a.min, a.ext), max(a.max, a.ext)
		}
		if !a.seen[a.ext] {
			a.seen[a.ext] = true
			a.s.Packets++
		}
		a.s.Last = p.Time
	}
	var streams []Stream
	for _, k := range order {
		a := byKey[k]
		a.s.Lost = int(a.max-a.min+1) - a.s.Packets
		a.s.Seen = []string{a.s.Iface}
		streams = append(streams, *a.s)
	}
	c.Streams = dedupeStreams(streams, topo)
	for i := range c.Streams {
		st := &c.Streams[i]
		st.Sender, st.Receiver = topo.Hop(st.Iface, st.Src.Addr(), st.Dst.Addr())
	}
	natStreams(c.Streams, topo)
	for i := range c.Streams {
		st := &c.Streams[i]
		st.From, st.To = c.place(st.Sender, st.Receiver, topo)
		c.use(st.From, st.Src.Addr(), topo)
		c.use(st.To, st.Dst.Addr(), topo)
	}
}

// Find selects a call: "" is the last call placed (the INVITE call that
// started last; the last dialog of any kind if there is none), a number is
// a call's number (Call.N, as `siplab ladder -list` shows it), anything else
// is a Call-ID (any of the call's Call-IDs, or a unique prefix), which also
// selects registrations and pings.
func Find(calls []*Call, sel string) (*Call, error) {
	if len(calls) == 0 {
		return nil, ErrNoCalls
	}
	if sel == "" {
		var last *Call
		for _, c := range calls {
			if c.IsInvite() && (last == nil || !c.Start.Before(last.Start)) {
				last = c
			}
		}
		if last != nil {
			return last, nil
		}
		return calls[len(calls)-1], nil
	}
	if n, err := strconv.Atoi(sel); err == nil {
		max := 0
		for _, c := range calls {
			if c.N == n && n > 0 {
				return c, nil
			}
			max = maxInt(max, c.N)
		}
		if max == 0 {
			return nil, fmt.Errorf("%w: call %d, the capture has no numbered call (no INVITE)", ErrNoSuchCall, n)
		}
		return nil, fmt.Errorf("%w: call %d, calls are numbered up to %d (siplab ladder -list)", ErrNoSuchCall, n, max)
	}
	var hits []*Call
	for _, c := range calls {
		for _, id := range c.CallIDs {
			if id == sel {
				return c, nil
			}
			if strings.HasPrefix(id, sel) {
				hits = append(hits, c)
				break
			}
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, fmt.Errorf("%w: no Call-ID starts with %q", ErrNoSuchCall, sel)
	}
	return nil, fmt.Errorf("%w: %q matches %d calls, give more of the Call-ID", ErrNoSuchCall, sel, len(hits))
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// sortStreams is used by the renderers: streams by first packet.
func sortStreams(s []Stream) {
	sort.SliceStable(s, func(i, j int) bool { return s[i].First.Before(s[j].First) })
}
