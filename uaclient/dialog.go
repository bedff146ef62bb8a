package uaclient

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// A call's or a subscription's RFC 3261 §12 state is a sipdialog.Dialog:
// the remote target (the Contact the peer wrote: the ghost-call lie) and
// the route set (the proxies that asked to stay in the path) are in full
// view there. Until the peer's Contact is known the remote target is empty
// and requests go to the remote URI.

// targetKnown reports whether d's remote target was learnt from the peer.
func targetKnown(d *sipdialog.Dialog) bool { return d.RemoteTarget.Scheme != "" }

// inDialogRequest builds a request inside the call's dialog (§12.2.1.1).
// CSeq is the dialog's next local sequence number unless cseq != 0 (ACK
// and CANCEL reuse the INVITE's).
func (p *Phone) inDialogRequest(c *Call, method sip.RequestMethod, cseq uint32) *sip.Request {
	return p.dialogRequest(&c.dlg, method, cseq)
}

// dialogRequest builds a request inside dialog d (a call's or a
// subscription's); d is guarded by p.mu.
func (p *Phone) dialogRequest(d *sipdialog.Dialog, method sip.RequestMethod, cseq uint32) *sip.Request {
	s := p.currentSettings()
	p.mu.Lock()
	if cseq == 0 {
		cseq = d.NextSeq()
	}
	at := *d // a copy: the stand-in target must not stick to d
	if !targetKnown(&at) {
		at.RemoteTarget = at.RemoteURI
	}
	req := at.Request(method, cseq)
	next := at.NextHop()
	p.mu.Unlock()

	// The phone's transport, unless the next hop's URI names one.
	tp := p.sipTransport()
	if t, ok := next.UriParams.Get("transport"); ok && t != "" {
		tp = strings.ToUpper(t)
	}
	req.SetTransport(tp)
	req.PrependHeader(p.newVia(s, req.Transport()))
	req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	return req
}

// remoteFromResponse takes the peer's side of a dialog of ours from a
// response to our request (§12.1.2): its Contact as the remote target and
// the reversed Record-Route as the route set.
func remoteFromResponse(d *sipdialog.Dialog, res *sip.Response) {
	if ct := res.Contact(); ct != nil {
		d.RemoteTarget = *ct.Address.Clone()
	}
	d.RouteSet = sipdialog.RouteSetAsUAC(res)
}

// matchDialog finds the call an in-dialog request belongs to (inDialogOf).
func (p *Phone) matchDialog(req *sip.Request) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		if c := p.calls[i]; inDialogOf(req, c.callID, &c.dlg) {
			return c
		}
	}
	return nil
}

// inDialogOf says whether req, as its UAS sees it, belongs to the dialog
// with Call-ID callID and d's tags: ours in To, theirs in From (§12.2.2).
// A CANCEL, an early request or a NOTIFY may come before we know their
// tag; a dialog without a remote tag matches any.
func inDialogOf(req *sip.Request, callID string, d *sipdialog.Dialog) bool {
	if req.CallID() == nil || req.From() == nil || req.To() == nil {
		return false
	}
	if sipdialog.CallID(req) != callID || sipdialog.ToTag(req) != d.LocalTag {
		return false
	}
	return d.RemoteTag == "" || d.RemoteTag == sipdialog.FromTag(req)
}
