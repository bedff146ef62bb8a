package uaclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// 100rel setting values (RFC 3262 reliable provisional responses).
const (
	// Rel100Off: not advertised; an INVITE that requires it gets 420.
	Rel100Off = "off"
	// Rel100Supported: Supported: 100rel; reliable 18x are PRACKed; as UAS
	// a 180 is sent reliably only when the INVITE requires it.
	Rel100Supported = "supported"
	// Rel100Prefer: as supported, and as UAS the 180 is sent reliably
	// whenever the INVITE supports 100rel.
	Rel100Prefer = "prefer"
	// Rel100Require: as prefer, and our INVITEs carry Require: 100rel.
	Rel100Require = "require"
)

// hasOptionTag reports whether a Supported/Require-style header lists tag.
func hasOptionTag(m interface{ GetHeaders(string) []sip.Header }, name, tag string) bool {
	for _, h := range m.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// --- UAC: PRACK a reliable 18x ---------------------------------------

// reliableProvisional checks a 18x that requires 100rel: it returns the
// RSeq to acknowledge, or ok false for a retransmission or an
// out-of-order response that must be ignored (RFC 3262 §4). p.mu held.
func (c *Call) reliableProvisionalLocked(res *sip.Response) (rseq uint32, ok bool, err error) {
	h := res.GetHeader("RSeq")
	if h == nil {
		return 0, false, fmt.Errorf("%d requires 100rel but has no RSeq", res.StatusCode)
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if perr != nil || n == 0 {
		return 0, false, fmt.Errorf("bad RSeq %q", h.Value())
	}
	rseq = uint32(n)
	switch {
	case !c.rseqSet:
		c.rseqSet, c.rseq = true, rseq
		return rseq, true, nil
	case rseq == c.rseq+1:
		c.rseq = rseq
		return rseq, true, nil
	}
	// A retransmission (our PRACK's own transaction retransmits) or a gap.
	return rseq, false, nil
}

// sendPrack acknowledges reliable provisional rseq of INVITE invite in the
// early dialog: a new transaction, the dialog's next CSeq, and RAck naming
// the response (RFC 3262 §7.2). The dialog CSeq is ours, so the ACK and
// BYE that follow keep counting from it.
func (c *Call) sendPrack(invite *sip.Request, code int, rseq uint32) {
	p := c.p
	req := p.inDialogRequest(c, sip.PRACK, 0)
	cs := invite.CSeq()
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d %s", rseq, cs.SeqNo, cs.MethodName)))
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, h := range invite.GetHeaders(name) {
			req.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	ctx, cancel := p.lifetime()
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, 32*time.Second)
	defer cancel2()
	c.log.Info("PRACK sent", "rseq", rseq, "for", code)
	res, _, err := p.doAuth(ctx, req)
	line := fmt.Sprintf("%d RSeq %d: PRACK sent", code, rseq)
	switch {
	case err != nil:
		line += ", no answer: " + strings.TrimPrefix(err.Error(), "uaclient: ")
	default:
		line += fmt.Sprintf(", %d %s", res.StatusCode, res.Reason)
	}
	p.mu.Lock()
	c.prack = append(c.prack, line)
	p.notifyLocked()
	p.mu.Unlock()
}

// --- UAS: send 180 reliably -------------------------------------------

// wantReliable says whether to send our 180 reliably for this INVITE.
func (p *Phone) wantReliable(req *sip.Request, s liveSettings) bool {
	if hasOptionTag(req, "Require", "100rel") {
		// sipcheck already refused it (420) when 100rel is off.
		return true
	}
	return (s.Rel100 == Rel100Prefer || s.Rel100 == Rel100Require) && hasOptionTag(req, "Supported", "100rel")
}

// sendReliable180 sends 180 with Require: 100rel and RSeq and retransmits
// it (sipdialog.Retransmit: over UDP, T1 doubling; RFC 3262 §3) until
// its PRACK arrives, stop is closed (a final response went out) or 64*T1
// pass.
func (c *Call) sendReliable180(tx sip.ServerTransaction, req *sip.Request, s liveSettings, stop <-chan struct{}) error {
	p := c.p
	rseq := uint32(rand.IntN(1<<30)) + 1
	pracked := make(chan struct{})
	// Logged before sending: the PRACK may be back before Respond returns.
	p.mu.Lock()
	c.relRSeq, c.relPracked, c.relCSeq = rseq, pracked, req.CSeq().SeqNo
	c.prack = append(c.prack, fmt.Sprintf("180 RSeq %d sent reliably", rseq))
	p.notifyLocked()
	p.mu.Unlock()
	res := sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil)
	res.AppendHeader(p.contactHeader(s))
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(rseq), 10)))
	if err := tx.Respond(res); err != nil {
		return err
	}
	c.log.Info("180 sent reliably", "rseq", rseq)
	go func() {
		ctx, cancel := p.lifetime()
		defer cancel()
		r := sipdialog.Retransmit(ctx, sipdialog.Retransmission{
			Resend: func() error { return tx.Respond(res) }, Reliable: sip.IsReliable(req.Transport()),
			Acked: pracked, Stop: stop,
		})
		if r == sipdialog.TimedOut {
			c.log.Warn("no PRACK for our reliable 180")
			p.mu.Lock()
			c.prack = append(c.prack, "no PRACK received")
			p.notifyLocked()
			p.mu.Unlock()
		}
	}()
	return nil
}

// onPrack matches a PRACK to our reliable 180 by RAck (RSeq, CSeq,
// method) and stops its retransmission.
func (p *Phone) onPrack(req *sip.Request, tx sip.ServerTransaction) {
	c := p.checkedInDialog(req, tx)
	if c == nil {
		return
	}
	h := req.GetHeader("RAck")
	if h == nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Missing RAck", p.warning(399, "PRACK without RAck"))
		return
	}
	f := strings.Fields(h.Value())
	var rseq, cseq uint64
	var err error
	if len(f) == 3 {
		if rseq, err = strconv.ParseUint(f[0], 10, 32); err == nil {
			cseq, err = strconv.ParseUint(f[1], 10, 32)
		}
	}
	if len(f) != 3 || err != nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad RAck", p.warning(399, fmt.Sprintf("RAck %q", h.Value())))
		return
	}
	p.mu.Lock()
	match := c.relPracked != nil && uint32(rseq) == c.relRSeq && uint32(cseq) == c.relCSeq && strings.EqualFold(f[2], "INVITE")
	first := false
	if match {
		select {
		case <-c.relPracked:
		default:
			close(c.relPracked)
			first = true
			c.prack = append(c.prack, fmt.Sprintf("PRACK received for RSeq %d", rseq))
		}
		p.notifyLocked()
	}
	p.mu.Unlock()
	if !match {
		// RFC 3262 §3: a PRACK that matches no unacknowledged reliable
		// provisional response gets 481.
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", p.warning(399, "RAck matches no reliable provisional response"))
		return
	}
	if first {
		c.log.Info("PRACK received", "rseq", rseq, "source", req.Source())
	}
	p.respondLog(tx, req, sip.StatusOK, "OK")
}
