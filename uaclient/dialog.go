package uaclient

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// dialog is the RFC 3261 §12 dialog state, kept here rather than in sipgo's
// dialog helpers so every field the lab cares about is visible: the remote
// target (the Contact the peer wrote: the ghost-call lie) and the route set
// (the proxies that asked to stay in the path).
type dialog struct {
	callID       string
	localTag     string
	remoteTag    string
	localURI     sip.Uri
	remoteURI    sip.Uri
	localSeq     uint32
	remoteSeq    uint32
	remoteSeqSet bool
	remoteTarget *sip.Uri
	routeSet     []sip.Uri
}

// routeSetFrom reads Record-Route in message order. A UAS uses that order;
// a UAC reverses it (RFC 3261 §12.1.1, §12.1.2).
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

func isLooseRoute(u sip.Uri) bool {
	return u.UriParams.Has("lr")
}

// applyRoute sets Request-URI, Route headers and the next hop of an
// in-dialog request (RFC 3261 §12.2.1.1): with a loose first route the
// Request-URI is the remote target and the request goes to the first route;
// with a strict (RFC 2543) one the route becomes the Request-URI and the
// remote target goes last in Route.
func applyRoute(req *sip.Request, target sip.Uri, routes []sip.Uri) {
	for req.RemoveHeader("Route") {
	}
	switch {
	case len(routes) == 0:
		req.Recipient = target
	case isLooseRoute(routes[0]):
		req.Recipient = target
		for _, r := range routes {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
	default:
		ruri := *routes[0].Clone()
		// Parameters not allowed in a Request-URI are stripped (§19.1.1).
		ruri.UriParams.Remove("lr")
		ruri.Headers = nil
		req.Recipient = ruri
		for _, r := range routes[1:] {
			req.AppendHeader(&sip.RouteHeader{Address: r})
		}
		req.AppendHeader(&sip.RouteHeader{Address: target})
	}
	next := target
	if len(routes) > 0 {
		next = routes[0]
	}
	req.SetDestination(uriHostPort(next))
	if tp, ok := next.UriParams.Get("transport"); ok && tp != "" {
		req.SetTransport(strings.ToUpper(tp))
	}
}

// uriHostPort is where a URI says to send: maddr is ignored (multicast is
// out of scope), the default port is 5060.
func uriHostPort(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

// inDialogRequest builds a request inside the call's dialog (§12.2.1.1).
// CSeq is the dialog's next local sequence number unless cseq != 0 (ACK
// and CANCEL reuse the INVITE's).
func (p *Phone) inDialogRequest(c *Call, method sip.RequestMethod, cseq uint32) *sip.Request {
	return p.dialogRequest(&c.dlg, method, cseq)
}

// dialogRequest builds a request inside dialog d (a call's or a
// subscription's); d is guarded by p.mu.
func (p *Phone) dialogRequest(d *dialog, method sip.RequestMethod, cseq uint32) *sip.Request {
	s := p.currentSettings()
	p.mu.Lock()
	if cseq == 0 {
		d.localSeq++
		cseq = d.localSeq
	}
	target := d.remoteURI
	if d.remoteTarget != nil {
		target = *d.remoteTarget
	}
	routes := append([]sip.Uri(nil), d.routeSet...)
	from := &sip.FromHeader{Address: d.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	to := &sip.ToHeader{Address: d.remoteURI, Params: sip.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", d.remoteTag)
	}
	callID := d.callID
	p.mu.Unlock()

	req := sip.NewRequest(method, target)
	req.SetTransport(p.sipTransport())
	applyRoute(req, target, routes)
	req.PrependHeader(p.newVia(s, req.Transport()))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	return req
}

// matchDialog finds the call an in-dialog request belongs to: Call-ID, our
// tag in To, theirs in From (§12.2.2). A CANCEL or early request may come
// before we know their tag; a call without a remote tag matches any.
func (p *Phone) matchDialog(req *sip.Request) *Call {
	cid := req.CallID()
	from, to := req.From(), req.To()
	if cid == nil || from == nil || to == nil {
		return nil
	}
	toTag, _ := to.Params.Get("tag")
	fromTag, _ := from.Params.Get("tag")
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		c := p.calls[i]
		if c.callID != cid.Value() || c.dlg.localTag != toTag {
			continue
		}
		if c.dlg.remoteTag != "" && c.dlg.remoteTag != fromTag {
			continue
		}
		return c
	}
	return nil
}
