package sbc

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// dialog is one leg's RFC 3261 §12 state. The SBC holds two per call: one
// where it is the UAS (towards the caller) and one where it is the UAC
// (towards the callee), with nothing shared between them but the media
// relay and the correlation id — that is what hides each side from the other.
type dialog struct {
	callID       string
	localTag     string
	remoteTag    string
	localURI     sip.Uri
	remoteURI    sip.Uri
	localSeq     uint32
	remoteSeq    uint32
	remoteSeqSet bool
	remoteTarget sip.Uri
	routeSet     []sip.Uri
}

// dialogKey finds a leg from an in-dialog request: Call-ID and our tag.
type dialogKey struct{ callID, localTag string }

// routeSetFrom reads Record-Route in message order; a UAC reverses it
// (RFC 3261 §12.1.1, §12.1.2).
func routeSetFrom(m interface{ GetHeaders(string) []sip.Header }, reverse bool) []sip.Uri {
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

// uriHostPort is where a URI says to send (default port 5060).
func uriHostPort(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

// request builds an in-dialog request on d (RFC 3261 §12.2.1.1); cseq 0
// takes the next local sequence number (ACK and CANCEL pass the INVITE's).
// The destination is the first route or the remote target; the caller
// overrides it for access legs, whose peers are reached where their
// packets come from.
func (d *dialog) request(method sip.RequestMethod, cseq uint32) *sip.Request {
	if cseq == 0 {
		d.localSeq++
		cseq = d.localSeq
	}
	req := sip.NewRequest(method, *d.remoteTarget.Clone())
	next := d.remoteTarget
	switch {
	case len(d.routeSet) == 0:
	case d.routeSet[0].UriParams.Has("lr"):
		for _, r := range d.routeSet {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
		next = d.routeSet[0]
	default: // strict routing: the first route becomes the Request-URI
		ruri := *d.routeSet[0].Clone()
		ruri.UriParams.Remove("lr")
		ruri.Headers = nil
		req.Recipient = ruri
		for _, r := range d.routeSet[1:] {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
		req.AppendHeader(&sip.RouteHeader{Address: d.remoteTarget})
		next = d.routeSet[0]
	}
	req.SetDestination(uriHostPort(next))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{Address: d.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: d.remoteURI, Params: sip.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", d.remoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	return req
}

// acceptSeq applies §12.2.2: in-dialog requests carry growing CSeqs.
func (d *dialog) acceptSeq(seq uint32) bool {
	if d.remoteSeqSet && seq <= d.remoteSeq {
		return false
	}
	d.remoteSeq, d.remoteSeqSet = seq, true
	return true
}

func toTag(m interface{ To() *sip.ToHeader }) string {
	if to := m.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}

func fromTag(m interface{ From() *sip.FromHeader }) string {
	if f := m.From(); f != nil {
		t, _ := f.Params.Get("tag")
		return t
	}
	return ""
}

func callID(m interface{ CallID() *sip.CallIDHeader }) string {
	if c := m.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
