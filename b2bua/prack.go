package b2bua

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// Reliable provisional responses (RFC 3262) on the legs the PBX
// originates: the INVITE says Supported: 100rel; a 18x that requires it
// carries RSeq and is acknowledged with PRACK, the way ACK acknowledges a
// 200, inside the early dialog.

// requires100rel reports whether a provisional response must be PRACKed,
// and its RSeq.
func requires100rel(res *sip.Response) (uint32, bool) {
	if res.StatusCode <= 100 || res.StatusCode >= 200 {
		return 0, false
	}
	req := false
	for _, h := range res.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(tag), "100rel") {
				req = true
			}
		}
	}
	rs := res.GetHeader("RSeq")
	if !req || rs == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(rs.Value()), 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint32(n), true
}

// prack acknowledges a reliable provisional on leg l, once per RSeq (the
// callee retransmits the 18x until our PRACK arrives: answer each copy).
func (c *Call) prack(l *leg, res *sip.Response, rseq uint32) {
	b := c.b
	b.mu.Lock()
	if l.prackedRSeq >= rseq && l.prackReq != nil {
		// A retransmission of a 18x we already acknowledged: our PRACK was
		// lost, send the same one again (same CSeq, new transaction).
		req := l.prackReq.Clone()
		b.mu.Unlock()
		req.RemoveHeader("Via")
		go c.sendPrack(l, req)
		return
	}
	l.prackedRSeq = rseq
	req := request(&l.Dlg, sip.PRACK, 0)
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, res.CSeq().SeqNo)))
	req.AppendHeader(c.correlation())
	l.prackReq = req.Clone()
	b.mu.Unlock()
	go c.sendPrack(l, req)
}

func (c *Call) sendPrack(l *leg, req *sip.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	res, err := c.b.do(ctx, req)
	if err != nil {
		c.event("PRACK on leg %s got no answer: %v", legNames[l.idx], err)
		return
	}
	c.event("PRACK %s on leg %s: %d %s", req.GetHeader("RAck").Value(), legNames[l.idx], res.StatusCode, res.Reason)
}

// --- towards the caller: the PBX as UAS sends 18x reliably --------------

func hasOptionTag(m interface{ GetHeaders(string) []sip.Header }, header, tag string) bool {
	for _, h := range m.GetHeaders(header) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// rel100Mode is what the caller's INVITE said about 100rel.
type rel100Mode int

const (
	rel100None      rel100Mode = iota // neither: every 18x unreliable
	rel100Supported                   // Supported: 100rel
	rel100Required                    // Require: 100rel
)

func rel100Of(req *sip.Request) rel100Mode {
	switch {
	case hasOptionTag(req, "Require", "100rel"):
		return rel100Required
	case hasOptionTag(req, "Supported", "100rel"):
		return rel100Supported
	}
	return rel100None
}

// reliable says whether a 18x with body goes reliably. RFC 3262 §3: a
// caller that requires 100rel gets every 18x reliably (MUST); one that
// only supports it MAY get them so — the PBX does it exactly when the 18x
// carries SDP (early media), because an answer in an unreliable 18x may
// be lost and is not binding (RFC 6337 §3.1.1), while a plain 180 is not
// worth a PRACK round trip.
func (m rel100Mode) reliable(body []byte) bool {
	return m == rel100Required || (m == rel100Supported && len(body) > 0)
}

// reliable18x is a provisional sent reliably on the caller's leg.
type reliable18x struct {
	rseq    uint32
	cseq    uint32
	sdp     bool // it carried SDP: no 2xx before its PRACK
	pracked chan struct{}
	expired chan struct{} // retransmitted 64*T1 without a PRACK
}

// queued18x waits for the PRACK of the reliable 18x before it.
type queued18x struct {
	tx  sip.ServerTransaction
	req *sip.Request
	res *sip.Response
	sdp bool
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sendReliable sends res (a 18x) on the caller's leg with Require: 100rel
// and the next RSeq, retransmitting it (sipdialog.Retransmit: over UDP,
// T1 doubling) until its PRACK arrives, the final response goes out or
// 64*T1 pass (RFC 3262 §3).
// While an earlier reliable 18x is not PRACKed yet this one waits (§3: no
// second reliable provisional before the first is acknowledged); a newer
// one replaces it in the queue, unless only the queued one has SDP.
func (c *Call) sendReliable(tx sip.ServerTransaction, req *sip.Request, res *sip.Response, sdp bool) {
	b := c.b
	stop := c.finalA
	b.mu.Lock()
	if prev := c.relA; prev != nil && !isClosed(prev.pracked) && !isClosed(prev.expired) {
		if q := c.relNextA; q == nil || sdp || !q.sdp {
			c.relNextA = &queued18x{tx: tx, req: req, res: res, sdp: sdp}
		}
		b.mu.Unlock()
		return
	}
	c.rseqA++
	r := &reliable18x{rseq: c.rseqA, cseq: req.CSeq().SeqNo, sdp: sdp, pracked: make(chan struct{}), expired: make(chan struct{})}
	c.relA = r
	b.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(r.rseq), 10)))
	b.send(tx, res)
	go func() {
		ctx, cancel := b.lifetime(65 * sip.T1)
		defer cancel()
		out := sipdialog.Retransmit(ctx, sipdialog.Retransmission{
			Resend: func() error { return tx.Respond(res) }, Reliable: sip.IsReliable(req.Transport()),
			Acked: r.pracked, Stop: stop,
		})
		if out == sipdialog.TimedOut {
			close(r.expired)
			c.event("no PRACK for reliable %d (RSeq %d) on leg a", res.StatusCode, r.rseq)
		}
	}()
}

// onPrack acknowledges a PRACK for our reliable provisional (RAck must
// name it: RSeq, the INVITE's CSeq and method), else 481.
func (b *B2BUA) onPrack(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	l := b.inDialog(req, tx)
	if l == nil {
		return
	}
	c := l.c
	var rseq, cseq uint32
	var method string
	if h := req.GetHeader("RAck"); h != nil {
		_, err := fmt.Sscanf(h.Value(), "%d %d %s", &rseq, &cseq, &method)
		if err != nil {
			rseq = 0
		}
	}
	b.mu.Lock()
	r := c.relA
	match := l.idx == legA && r != nil && rseq == r.rseq && cseq == r.cseq && strings.EqualFold(method, "INVITE")
	var next *queued18x
	if match && !isClosed(r.pracked) {
		close(r.pracked)
		next, c.relNextA = c.relNextA, nil
	}
	b.mu.Unlock()
	if !match {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "RAck matches no reliable provisional")
		return
	}
	b.send(tx, c.inResponse(req, sip.StatusOK, "OK", nil))
	c.event("PRACK %d %d INVITE from leg a: 200 OK", rseq, cseq)
	if next != nil && !isClosed(c.finalA) {
		c.sendReliable(next.tx, next.req, next.res, next.sdp)
	}
}

// awaitEarlyAnswerPrack holds the caller's 2xx while a reliable 18x with
// SDP is not PRACKed (RFC 3262 §3); an error means it never will be.
func (c *Call) awaitEarlyAnswerPrack() error {
	b := c.b
	b.mu.Lock()
	r := c.relA
	b.mu.Unlock()
	if r == nil || !r.sdp {
		return nil
	}
	select {
	case <-r.pracked:
		return nil
	case <-r.expired:
		return fmt.Errorf("no PRACK for the reliable 18x (RSeq %d) with the early answer", r.rseq)
	case <-c.cancelled:
		return nil // the caller's CANCEL is handled by the caller of this
	case <-b.done:
		return ErrClosed
	}
}
