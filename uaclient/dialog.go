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
		if c.callID != cid.Value() || c.dlg.LocalTag != toTag {
			continue
		}
		if c.dlg.RemoteTag != "" && c.dlg.RemoteTag != fromTag {
			continue
		}
		return c
	}
	return nil
}
