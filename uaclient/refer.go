package uaclient

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TransferStatus is a call's transfer, from either side.
type TransferStatus struct {
	// Role is "transferor" (we sent REFER) or "transferee" (we got it).
	Role string `json:"role"`
	// Target is the Refer-To URI; Replaces is set for an attended transfer.
	Target   string `json:"target"`
	Replaces string `json:"replaces,omitempty"`
	// State: requested, accepted (202), trying, succeeded, failed.
	State string `json:"state"`
	// ReferCode/ReferReason answer the REFER.
	ReferCode   int    `json:"refer_code,omitempty"`
	ReferReason string `json:"refer_reason,omitempty"`
	// Progress is the last message/sipfrag status line sent or received
	// in a NOTIFY, e.g. "SIP/2.0 200 OK".
	Progress []string `json:"progress,omitempty"`
	// NewCall is the transferee's new call (short id).
	NewCall string `json:"new_call,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Transfer roles and states.
const (
	RoleTransferor = "transferor"
	RoleTransferee = "transferee"
	// RoleReplaced marks a call that an INVITE with Replaces took over.
	RoleReplaced = "replaced"

	TransferRequested = "requested"
	TransferAccepted  = "accepted"
	TransferTrying    = "trying"
	TransferSucceeded = "succeeded"
	TransferFailed    = "failed"
)

func (t *TransferStatus) final() bool {
	return t.State == TransferSucceeded || t.State == TransferFailed
}

// Transfer asks the peer of call ref to call target: REFER with Refer-To
// (RFC 3515), a blind transfer. With with set (a confirmed consultation
// call), the transfer is attended: Refer-To names that call's peer (unless
// target is given) and carries Replaces for its dialog (RFC 3891), so the
// transferee's new call takes over the consultation call.
//
// It returns once the REFER is answered; the transferee's NOTIFYs
// (message/sipfrag) then move the call's transfer status on, and on
// success the transferee ends the call with BYE.
func (p *Phone) Transfer(ctx context.Context, ref, target, with string) error {
	_, err := p.transfer(ctx, ref, target, with)
	return err
}

// transfer is Transfer returning the call it acted on.
func (p *Phone) transfer(ctx context.Context, ref, target, with string) (*Call, error) {
	var w *Call
	var err error
	if strings.TrimSpace(with) != "" {
		if w, err = p.findCall(with, nil); err != nil {
			return nil, err
		}
	}
	// "" is the newest confirmed call other than the consultation call.
	c, err := p.findCall(ref, func(c *Call) bool { return c.state == StateConfirmed && c != w })
	if err != nil {
		return nil, err
	}
	if w == c {
		return c, fmt.Errorf("%w: a call cannot replace itself", ErrBadValue)
	}
	if err := c.sendRefer(ctx, w, target); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Call) sendRefer(ctx context.Context, w *Call, target string) error {
	p := c.p
	var err error
	var to sip.Uri
	if strings.TrimSpace(target) != "" {
		if to, err = p.parseTarget(target); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if c.state != StateConfirmed {
		st := c.state
		p.mu.Unlock()
		return fmt.Errorf("%w: call %s is %s; transfer needs a confirmed call", ErrCallState, c.id, st)
	}
	if c.transfer != nil && !c.transfer.final() {
		p.mu.Unlock()
		return fmt.Errorf("%w: call %s already has a transfer in progress", ErrCallState, c.id)
	}
	replaces := ""
	if w != nil {
		if w.state != StateConfirmed {
			st := w.state
			p.mu.Unlock()
			return fmt.Errorf("%w: consultation call %s is %s, not confirmed", ErrCallState, w.id, st)
		}
		// RFC 3891 §3: to-tag is compared with the local tag of the UA
		// that receives the INVITE, that is our peer on w.
		replaces = fmt.Sprintf("%s;to-tag=%s;from-tag=%s", w.callID, w.dlg.RemoteTag, w.dlg.LocalTag)
		if to.Host == "" {
			to = *w.dlg.RemoteURI.Clone()
		}
	}
	if to.Host == "" {
		p.mu.Unlock()
		return fmt.Errorf("%w: transfer needs a target", ErrBadTarget)
	}
	t := &TransferStatus{Role: RoleTransferor, Target: to.String(), Replaces: replaces, State: TransferRequested}
	c.transfer = t
	p.notifyLocked()
	p.mu.Unlock()

	referTo := "<" + to.String()
	if replaces != "" {
		referTo += "?Replaces=" + escapeURIHeader(replaces)
	}
	referTo += ">"
	s := p.currentSettings()
	req := p.inDialogRequest(c, sip.REFER, 0)
	req.AppendHeader(sip.NewHeader("Refer-To", referTo))
	aor := p.aor()
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+aor.String()+">"))
	req.AppendHeader(p.contactHeader(s))
	c.log.Info("REFER sent", "refer_to", referTo)
	res, _, err := p.doAuth(ctx, req)
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notifyLocked()
	if err != nil {
		t.State, t.Error = TransferFailed, strings.TrimPrefix(err.Error(), "uaclient: ")
		return err
	}
	t.ReferCode, t.ReferReason = res.StatusCode, res.Reason
	if !res.IsSuccess() {
		t.State = TransferFailed
		return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
	}
	if t.State == TransferRequested {
		// A NOTIFY may have overtaken the 202.
		t.State = TransferAccepted
	}
	return nil
}

// escapeURIHeader percent-encodes a URI header value (RFC 3261 §25.1
// hvalue): everything but unreserved characters.
func escapeURIHeader(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.!~*'()", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

// parseReferTo reads a Refer-To value: a name-addr or addr-spec whose URI
// may carry ?Replaces=... . The URI comes back without its headers.
func parseReferTo(v string) (sip.Uri, string, error) {
	var u sip.Uri
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return u, "", fmt.Errorf("unterminated <")
		}
		v = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		// addr-spec form: ;params belong to the header, not the URI.
		v = v[:i]
	}
	uriPart, hdrs, _ := strings.Cut(v, "?")
	if !strings.HasPrefix(strings.ToLower(uriPart), "sip:") {
		return u, "", errNotSIP
	}
	if err := sip.ParseUri(uriPart, &u); err != nil {
		return u, "", err
	}
	if u.Host == "" {
		return u, "", fmt.Errorf("no host")
	}
	replaces := ""
	if hdrs != "" {
		for _, kv := range strings.Split(hdrs, "&") {
			k, val, _ := strings.Cut(kv, "=")
			if !strings.EqualFold(k, "Replaces") {
				continue
			}
			dec, err := url.PathUnescape(val)
			if err != nil {
				return u, "", fmt.Errorf("Replaces: %w", err)
			}
			replaces = dec
		}
	}
	u.Headers = nil
	return u, replaces, nil
}

var errNotSIP = fmt.Errorf("not a sip: URI")

// replacesID is a parsed Replaces header (RFC 3891 §6.1).
type replacesID struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

func parseReplaces(v string) (replacesID, error) {
	parts := strings.Split(v, ";")
	r := replacesID{callID: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			r.toTag = val
		case "from-tag":
			r.fromTag = val
		case "early-only":
			r.earlyOnly = true
		}
	}
	if r.callID == "" || r.toTag == "" || r.fromTag == "" {
		return r, fmt.Errorf("Replaces %q needs a Call-ID, to-tag and from-tag", v)
	}
	return r, nil
}

// onRefer takes a REFER inside a call: 202, then the new call and NOTIFYs
// of its progress (message/sipfrag), then BYE on the old call once the
// new one is answered (RFC 5589 §6).
func (p *Phone) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	if !hasToTag(req) {
		p.respondLog(tx, req, sip.StatusForbidden, "Forbidden", p.warning(399, "REFER outside a dialog is not accepted"))
		return
	}
	c := p.inDialog(req, tx)
	if c == nil {
		return
	}
	hs := req.GetHeaders("Refer-To")
	if len(hs) != 1 {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad Refer-To", p.warning(399, fmt.Sprintf("REFER needs exactly one Refer-To, got %d", len(hs))))
		return
	}
	target, replaces, err := parseReferTo(hs[0].Value())
	if err == errNotSIP {
		p.respondLog(tx, req, 416, "Unsupported URI Scheme", p.warning(399, "Refer-To must be a sip: URI"))
		return
	}
	if err == nil && replaces != "" {
		_, err = parseReplaces(replaces)
	}
	if err != nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad Refer-To", p.warning(399, err.Error()))
		return
	}
	p.mu.Lock()
	st := c.state
	busy := c.transfer != nil && !c.transfer.final()
	if st == StateConfirmed && !busy {
		c.transfer = &TransferStatus{Role: RoleTransferee, Target: target.String(), Replaces: replaces, State: TransferAccepted, ReferCode: sip.StatusAccepted, ReferReason: "Accepted"}
		p.notifyLocked()
	}
	p.mu.Unlock()
	switch {
	case st != StateConfirmed:
		p.respondLog(tx, req, sip.StatusForbidden, "Forbidden", p.warning(399, "REFER needs a confirmed call"))
		return
	case busy:
		p.respondLog(tx, req, sip.StatusRequestPending, "Request Pending", p.warning(399, "a transfer of this call is already running"))
		return
	}
	p.respondLog(tx, req, sip.StatusAccepted, "Accepted", p.contactHeader(p.currentSettings()))
	c.log.Info("REFER accepted", "refer_to", target.String(), "replaces", replaces, "source", req.Source())
	var extra []sip.Header
	if rb := req.GetHeader("Referred-By"); rb != nil {
		extra = append(extra, sip.NewHeader("Referred-By", rb.Value()))
	}
	if replaces != "" {
		extra = append(extra, sip.NewHeader("Replaces", replaces), sip.NewHeader("Require", "replaces"))
	}
	// Ends with the phone: its context is the phone's lifetime.
	go c.runTransferee(target, extra)
}

// runTransferee places the call the REFER asked for and reports it.
func (c *Call) runTransferee(target sip.Uri, extra []sip.Header) {
	p := c.p
	ctx, cancel := p.lifetime()
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel2()
	fail := func(frag string, why string) {
		p.mu.Lock()
		c.transfer.State, c.transfer.Error = TransferFailed, why
		p.notifyLocked()
		p.mu.Unlock()
		c.sendReferNotify(ctx, frag, true)
	}
	c.sendReferNotify(ctx, "SIP/2.0 100 Trying", false)
	p.mu.Lock()
	c.transfer.State = TransferTrying
	p.notifyLocked()
	p.mu.Unlock()
	nc, err := p.call(ctx, target, extra...)
	if nc != nil {
		p.mu.Lock()
		c.transfer.NewCall = nc.id
		p.notifyLocked()
		p.mu.Unlock()
	}
	if err != nil {
		fail("SIP/2.0 503 Service Unavailable", strings.TrimPrefix(err.Error(), "uaclient: "))
		return
	}
	st, err := nc.Wait(ctx, StateRinging, StateEarly, StateConfirmed, StateTerminated)
	if err == nil && (st.State == StateRinging || st.State == StateEarly) {
		c.sendReferNotify(ctx, fmt.Sprintf("SIP/2.0 %d %s", st.Code, st.Reason), false)
		st, err = nc.Wait(ctx, StateConfirmed, StateTerminated)
	}
	if err != nil {
		nc.end(context.WithoutCancel(ctx))
		fail("SIP/2.0 408 Request Timeout", err.Error())
		return
	}
	if st.State != StateConfirmed {
		code, reason := st.Code, st.Reason
		if code < 300 {
			code, reason = 500, "Server Internal Error"
		}
		fail(fmt.Sprintf("SIP/2.0 %d %s", code, reason), "new call failed: "+strconv.Itoa(st.Code)+" "+st.Reason)
		return
	}
	p.mu.Lock()
	c.transfer.State = TransferSucceeded
	p.notifyLocked()
	p.mu.Unlock()
	c.sendReferNotify(ctx, "SIP/2.0 200 OK", true)
	// RFC 5589 lets either side end the old call; here the transferee does.
	c.log.Info("transfer succeeded, ending the old call", "new_call", nc.id)
	if err := c.end(ctx); err != nil {
		c.log.Info("old call not ended", "err", err)
	}
}

// sendReferNotify reports transfer progress in the REFER's implicit
// subscription (RFC 3515 §2.4.4): a message/sipfrag status line.
func (c *Call) sendReferNotify(ctx context.Context, frag string, final bool) {
	p := c.p
	if c.isTerminated() {
		return
	}
	s := p.currentSettings()
	req := p.inDialogRequest(c, sip.NOTIFY, 0)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(p.contactHeader(s))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(frag + "\r\n"))
	p.mu.Lock()
	c.transfer.Progress = append(c.transfer.Progress, frag)
	p.notifyLocked()
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, _, err := p.doAuth(ctx, req)
	switch {
	case err != nil:
		c.log.Warn("NOTIFY not answered", "frag", frag, "err", err)
	case !res.IsSuccess():
		c.log.Warn("NOTIFY refused", "frag", frag, "code", res.StatusCode, "reason", res.Reason)
	}
}

// onReferNotify takes the transferee's progress report for our REFER.
func (p *Phone) onReferNotify(c *Call, req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	t := c.transfer
	if t == nil || t.Role != RoleTransferor {
		p.mu.Unlock()
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Subscription Does Not Exist", p.warning(399, "no REFER of ours on this call"))
		return
	}
	p.mu.Unlock()
	line, _, _ := strings.Cut(string(req.Body()), "\n")
	line = strings.TrimSpace(line)
	code := 0
	if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "SIP/") {
		code, _ = strconv.Atoi(f[1])
	}
	if code < 100 || code > 699 {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad sipfrag", p.warning(399, fmt.Sprintf("sipfrag status line %q", line)))
		return
	}
	p.mu.Lock()
	t.Progress = append(t.Progress, line)
	switch {
	case code >= 300:
		t.State = TransferFailed
	case code >= 200:
		t.State = TransferSucceeded
	default:
		t.State = TransferTrying
	}
	p.notifyLocked()
	p.mu.Unlock()
	c.log.Info("transfer progress", "sipfrag", line)
	p.respondLog(tx, req, sip.StatusOK, "OK")
}

// onNotify routes a NOTIFY by its Event: refer progress to the call it
// belongs to, dialog and message-summary to our subscriptions.
func (p *Phone) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	ev := ""
	if h := req.GetHeader("Event"); h != nil {
		ev, _, _ = strings.Cut(h.Value(), ";")
		ev = strings.ToLower(strings.TrimSpace(ev))
	}
	if ev == "" {
		p.respondLog(tx, req, sip.StatusBadRequest, "Missing Event", p.warning(399, "NOTIFY without Event"))
		return
	}
	if ev != "refer" {
		p.onSubscriptionNotify(ev, req, tx)
		return
	}
	c := p.inDialog(req, tx)
	if c == nil {
		return
	}
	p.onReferNotify(c, req, tx)
}

// matchReplaces finds the dialog an INVITE with Replaces names (RFC 3891
// §3): to-tag is our local tag, from-tag the peer's. Only a confirmed call
// is replaced here; anything else is refused with the code to send.
func (p *Phone) matchReplaces(v string) (*Call, int, string) {
	r, err := parseReplaces(v)
	if err != nil {
		return nil, sip.StatusBadRequest, err.Error()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		c := p.calls[i]
		if c.callID != r.callID || c.dlg.LocalTag != r.toTag || c.dlg.RemoteTag != r.fromTag {
			continue
		}
		switch {
		case c.state == StateTerminated:
			return nil, sip.StatusGlobalDecline, "the call to replace has ended"
		case r.earlyOnly:
			return nil, sip.StatusGlobalDecline, "early-only: the call to replace is " + string(c.state)
		case c.state != StateConfirmed:
			return nil, sip.StatusCallTransactionDoesNotExists, "only a confirmed call can be replaced here"
		}
		return c, 0, ""
	}
	return nil, sip.StatusCallTransactionDoesNotExists, "no dialog matches Replaces " + v
}
