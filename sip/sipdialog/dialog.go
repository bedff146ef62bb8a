// Package sipdialog is the RFC 3261 §12 dialog layer every user agent in
// the lab shares: the dialog state, the route set learnt when the dialog is
// made, the in-dialog request built from it (§12.2.1.1), the remote CSeq
// check (§12.2.2) and the CANCEL of an INVITE (§9.1).
//
// It is kept here rather than in sipgo's dialog helpers so every field the
// lab cares about is visible: the remote target (the Contact the peer
// wrote: the ghost-call lie) and the route set (the proxies that asked to
// stay in the path). What differs between daemons — the transport, a Via,
// where an access leg's packets really go — is set by the caller on the
// request this package returns.
package sipdialog

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Dialog is one side's state of a dialog (§12.1). A B2BUA holds two per
// call: one where it is the UAS (towards the caller) and one where it is
// the UAC (towards the callee). Whoever holds a Dialog guards it.
type Dialog struct {
	CallID    string
	LocalTag  string
	RemoteTag string
	LocalURI  sip.Uri // our From (UAC) / To (UAS) address
	RemoteURI sip.Uri
	LocalSeq  uint32
	// RemoteSeq is the CSeq of the peer's last in-dialog request; it means
	// nothing until RemoteSeqSet (a UAC learns it from the first request
	// the peer sends).
	RemoteSeq    uint32
	RemoteSeqSet bool
	// RemoteTarget is the peer's Contact: where in-dialog requests go
	// (through the route set). A target refresh (re-INVITE, UPDATE, 2xx)
	// replaces it (§12.2).
	RemoteTarget sip.Uri
	RouteSet     []sip.Uri
}

// Key finds a dialog from an in-dialog request: Call-ID and our tag.
type Key struct{ CallID, LocalTag string }

// Key is d's key.
func (d *Dialog) Key() Key { return Key{d.CallID, d.LocalTag} }

// KeyOf is the key of the dialog a received request belongs to: its
// Call-ID and our tag, which the peer writes in To.
func KeyOf(req *sip.Request) Key { return Key{CallID(req), ToTag(req)} }

// RouteSetAsUAS is the route set of a dialog made by a request we answer:
// its Record-Route in message order (§12.1.1).
func RouteSetAsUAS(m interface{ GetHeaders(string) []sip.Header }) []sip.Uri {
	return routeSet(m, false)
}

// RouteSetAsUAC is the route set of a dialog made by a response to our
// request: its Record-Route reversed, so the proxy nearest to us comes
// first (§12.1.2).
func RouteSetAsUAC(m interface{ GetHeaders(string) []sip.Header }) []sip.Uri {
	return routeSet(m, true)
}

func routeSet(m interface{ GetHeaders(string) []sip.Header }, reverse bool) []sip.Uri {
	var out []sip.Uri
	for _, h := range m.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			out = append(out, *rr.Address.Clone())
		}
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// HostPort is where a URI says to send: maddr is ignored (multicast is out
// of scope), the default port is 5060, and the lab resolves no names, so a
// host name fails at send time.
func HostPort(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

// NextHop is where d's requests go first: the first route, else the
// remote target.
func (d *Dialog) NextHop() sip.Uri {
	if len(d.RouteSet) > 0 {
		return d.RouteSet[0]
	}
	return d.RemoteTarget
}

// NextSeq takes the next local CSeq number.
func (d *Dialog) NextSeq() uint32 {
	d.LocalSeq++
	return d.LocalSeq
}

// Request builds a request inside d (§12.2.1.1): Request-URI and Route
// from the remote target and the route set, From/To/Call-ID from the
// dialog, Max-Forwards 70, and the destination set to the next hop. cseq 0
// takes the next local sequence number (ACK and CANCEL pass the INVITE's).
// No transport and no Via are set: the caller decides those.
//
// With a loose first route (;lr) the Request-URI is the remote target and
// every route goes in Route. With a strict (RFC 2543) one the first route
// becomes the Request-URI, the rest follow in Route and the remote target
// goes last, so the strict router can put it back.
func (d *Dialog) Request(method sip.RequestMethod, cseq uint32) *sip.Request {
	if cseq == 0 {
		cseq = d.NextSeq()
	}
	req := sip.NewRequest(method, d.RemoteTarget)
	switch {
	case len(d.RouteSet) == 0:
	case d.RouteSet[0].UriParams.Has("lr"):
		for _, r := range d.RouteSet {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
	default:
		ruri := *d.RouteSet[0].Clone()
		// Parameters not allowed in a Request-URI are stripped (§19.1.1).
		ruri.UriParams.Remove("lr")
		ruri.Headers = nil
		req.Recipient = ruri
		for _, r := range d.RouteSet[1:] {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
		req.AppendHeader(&sip.RouteHeader{Address: d.RemoteTarget})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{Address: d.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", d.LocalTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: d.RemoteURI, Params: sip.NewParams()}
	if d.RemoteTag != "" {
		to.Params.Add("tag", d.RemoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.SetDestination(HostPort(d.NextHop()))
	return req
}

// AcceptSeq applies §12.2.2: the peer's in-dialog requests carry growing
// CSeq numbers; a lower or equal one is refused (and not remembered).
func (d *Dialog) AcceptSeq(seq uint32) bool {
	if d.RemoteSeqSet && seq <= d.RemoteSeq {
		return false
	}
	d.RemoteSeq, d.RemoteSeqSet = seq, true
	return true
}

// Cancel builds the CANCEL of inv (§9.1): same Request-URI, Call-ID, To,
// From, CSeq number and Route as the INVITE, and a single Via equal to the
// INVITE's top Via, so the server matches it to the INVITE transaction. It
// goes where the INVITE went, over the same transport.
func Cancel(inv *sip.Request) *sip.Request {
	cr := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	cr.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range inv.GetHeaders("Route") {
		cr.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	cr.AppendHeader(&mf)
	cr.AppendHeader(sip.HeaderClone(inv.From()))
	cr.AppendHeader(sip.HeaderClone(inv.To()))
	cr.AppendHeader(sip.HeaderClone(inv.CallID()))
	cr.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	cr.SetTransport(inv.Transport())
	cr.SetDestination(inv.Destination())
	return cr
}

// ToTag is the tag of a message's To header ("" when absent).
func ToTag(m interface{ To() *sip.ToHeader }) string {
	if to := m.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}

// FromTag is the tag of a message's From header ("" when absent).
func FromTag(m interface{ From() *sip.FromHeader }) string {
	if f := m.From(); f != nil {
		t, _ := f.Params.Get("tag")
		return t
	}
	return ""
}

// CallID is a message's Call-ID ("" when absent).
func CallID(m interface{ CallID() *sip.CallIDHeader }) string {
	if c := m.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
