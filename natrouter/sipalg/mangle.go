package sipalg

import (
	"bytes"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// DefaultSIPPort is the port a SIP URI without one means (RFC 3261 §19.1.2).
const DefaultSIPPort = 5060

// Params is what the router knows when a packet leaves the site.
type Params struct {
	// LAN is the router's LAN subnet: addresses inside it are "private" and
	// get rewritten.
	LAN netip.Prefix
	// WAN is the router's public address.
	WAN netip.Addr
	// MappedPort is the packet's UDP source port after source NAT: the
	// external port of the phone's signalling mapping.
	MappedPort uint16
}

// PacketInfo is what a drop decision may look at.
type PacketInfo struct {
	// IPLen is the IPv4 total length of the (reassembled) datagram.
	IPLen int
	// MTU is the MTU of the LAN interface the packet arrived on: a
	// datagram longer than that came in fragments.
	MTU int
}

// Edit replaces one Occurrence.
type Edit struct {
	Occurrence
	NewAddr netip.Addr
	// NewPort replaces the ":port" (or adds one when absent); 0 keeps
	// whatever port text was there.
	NewPort uint16
}

// Result is what the ALG did to one message.
type Result struct {
	// Msg is the message to send: the input itself when nothing changed.
	Msg     []byte
	Changed bool
	// Drop, when not empty, says why the ALG dropped the message.
	Drop string
	// Edits are the address rewrites made, in message order.
	Edits []Edit
	// Faults are the faults in force.
	Faults []string
	// ContentLength is "fixed" when the ALG rewrote Content-Length, "stale"
	// when the body changed size and Content-Length was left alone, "" when
	// it had no reason to touch it.
	ContentLength string
}

// Mangle rewrites one outbound SIP message the way a consumer ALG with the
// given faults does. It never fails: what it cannot make sense of passes
// unchanged, which is also what a real ALG does with a message it does not
// parse.
func Mangle(msg []byte, p Params, pkt PacketInfo, set Set) Result {
	res := Result{Msg: msg, Faults: set.Names()}
	for _, f := range set.list {
		if f.drop == nil {
			continue
		}
		if why := f.drop(pkt); why != "" {
			res.Drop = f.Name + ": " + why
			return res
		}
	}
	if !LooksLikeSIP(msg) || !p.LAN.IsValid() || !p.WAN.IsValid() {
		return res
	}
	m := ParseMessage(msg, p.LAN.Masked())
	edits := basePlan(m, p)
	for _, f := range set.list {
		if f.plan != nil {
			edits = f.plan(m, p, edits)
		}
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].Start < edits[j].Start })

	out, bodyDelta := apply(msg, edits, m.BodyStart)
	for _, f := range set.list {
		if f.raw != nil {
			out = f.raw(out)
		}
	}
	res.Edits = edits
	if bodyDelta != 0 {
		res.ContentLength = "stale"
		stale := false
		for _, f := range set.list {
			stale = stale || f.staleLength
		}
		if !stale {
			if fixed, ok := fixContentLength(out, bodyDelta); ok {
				out = fixed
				res.ContentLength = "fixed"
			}
		}
	}
	res.Changed = !bytes.Equal(out, msg)
	if res.Changed {
		res.Msg = out
	}
	return res
}

// basePlan is what a correct consumer ALG rewrites: the phone's signalling
// address in Via and Contact (address and port, to the external mapping),
// and the media address in SDP o= and c=. It leaves the Request-URI,
// From/To and Call-ID alone (they name users and dialogs, not where to send
// packets) and the m= port (the router keeps the phone's RTP port when it
// is free).
func basePlan(m *Message, p Params) []Edit {
	var edits []Edit
	for _, o := range m.Occurrences {
		e := Edit{Occurrence: o, NewAddr: p.WAN}
		switch o.Field {
		case FieldVia, FieldContact:
			if o.HasPort() || p.MappedPort != DefaultSIPPort {
				e.NewPort = p.MappedPort
			}
		case FieldSDPOrigin, FieldSDPConnection:
		default:
			continue
		}
		edits = append(edits, e)
	}
	return edits
}

// apply makes the edits (sorted, non-overlapping) and returns the new
// message and how much the body's length changed.
func apply(msg []byte, edits []Edit, bodyStart int) ([]byte, int) {
	if len(edits) == 0 {
		return msg, 0
	}
	var b bytes.Buffer
	b.Grow(len(msg) + 16*len(edits))
	last, delta := 0, 0
	for _, e := range edits {
		if e.Start < last {
			continue // overlapping edit: a bug in a plan hook, keep the first
		}
		b.Write(msg[last:e.Start])
		repl := e.NewAddr.String()
		if e.NewPort != 0 {
			repl += ":" + strconv.Itoa(int(e.NewPort))
		} else {
			repl += string(msg[e.End:e.PortEnd])
		}
		b.WriteString(repl)
		if e.Start >= bodyStart {
			delta += len(repl) - (e.PortEnd - e.Start)
		}
		last = e.PortEnd
	}
	b.Write(msg[last:])
	return b.Bytes(), delta
}

// fixContentLength adds delta to the Content-Length value, as an ALG that
// adjusts lengths does (it keeps a sender's own error rather than
// recomputing).
func fixContentLength(msg []byte, delta int) ([]byte, bool) {
	m := ParseMessage(msg, netip.Prefix{})
	var out []byte
	found := false
	forEachLine(msg[:m.HeaderEnd], 0, func(start, end int) {
		if found {
			return
		}
		name, val, ok := bytes.Cut(msg[start:end], []byte(":"))
		if !ok {
			return
		}
		n := strings.ToLower(strings.TrimSpace(string(name)))
		if n != "content-length" && n != "l" {
			return
		}
		valStart := start + len(name) + 1
		trimmed := bytes.TrimSpace(val)
		cl, err := strconv.Atoi(string(trimmed))
		if err != nil || cl+delta < 0 {
			return
		}
		vs := valStart + bytes.Index(val, trimmed)
		out = append(out, msg[:vs]...)
		out = append(out, strconv.Itoa(cl+delta)...)
		out = append(out, msg[vs+len(trimmed):]...)
		found = true
	})
	return out, found
}
