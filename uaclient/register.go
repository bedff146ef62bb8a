package uaclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// RegState is the registration state shown in status.
type RegState string

const (
	RegUnregistered RegState = "unregistered"
	RegRegistering  RegState = "registering"
	RegRegistered   RegState = "registered"
	RegFailed       RegState = "failed"
)

// RegBinding is one contact the registrar reported in its 200 OK.
type RegBinding struct {
	Contact string `json:"contact"`
	Expires int    `json:"expires"`
	// Mine marks the binding this phone wrote.
	Mine bool `json:"mine"`
}

// RegStatus is the registration part of Status.
type RegStatus struct {
	State     RegState `json:"state"`
	AOR       string   `json:"aor"`
	Registrar string   `json:"registrar,omitempty"`
	// Contact is the Contact URI sent in the last REGISTER.
	Contact string `json:"contact,omitempty"`
	// CallID is the one Call-ID of all our REGISTERs (RFC 3261 §10.2):
	// what finds them in a capture.
	CallID string `json:"call_id,omitempty"`
	// Expires is when the binding lapses; ExpiresIn is seconds from now.
	Expires   time.Time `json:"expires,omitzero"`
	ExpiresIn int       `json:"expires_in"`
	// RefreshAt is when the next REGISTER goes out (about half-way).
	RefreshAt time.Time `json:"refresh_at,omitzero"`
	// Code and Reason of the last final response.
	Code     int          `json:"code,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Error    string       `json:"error,omitempty"`
	Bindings []RegBinding `json:"bindings,omitempty"`
}

type registration struct {
	mu     sync.Mutex // serialises REGISTER exchanges; not p.mu
	state  RegState
	wanted bool
	callID string
	cseq   uint32
	// minExpires is the registrar's Min-Expires from a 423.
	minExpires int
	contact    string
	expiresAt  time.Time
	refreshAt  time.Time
	code       int
	reason     string
	err        string
	bindings   []RegBinding
}

// failureRetry is how soon a failed registration is tried again by the
// refresh loop.
const failureRetry = 30 * time.Second

// Register sends REGISTER (answering a 401 with digest credentials) and
// keeps the binding refreshed at about half its lifetime until Unregister.
func (p *Phone) Register(ctx context.Context) error {
	p.mu.Lock()
	p.reg.wanted = true
	p.mu.Unlock()
	err := p.register(ctx, p.cfg.Expires)
	p.kickRegistration()
	return err
}

// Unregister removes every binding of this phone's AOR (Contact: *,
// Expires: 0, RFC 3261 §10.2.2) and stops refreshing. Not just the Contact
// we wrote last: a binding a broken ALG rewrote (Contact 203.0.113.2:5060)
// or one left by an earlier contact_addr is ours too, and would fork calls
// to a ghost.
func (p *Phone) Unregister(ctx context.Context) error {
	p.mu.Lock()
	p.reg.wanted = false
	p.mu.Unlock()
	p.kickRegistration()
	return p.register(ctx, unregisterAll)
}

// unregisterAll is the expires value register takes for a wildcard
// un-REGISTER.
const unregisterAll = -1

func (p *Phone) kickRegistration() {
	select {
	case p.regKick <- struct{}{}:
	default:
	}
}

func (p *Phone) register(ctx context.Context, expires int) error {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	if p.proxy() == "" {
		p.setRegResult(RegFailed, 0, "", ErrNoProxy, nil, 0)
		return ErrNoProxy
	}
	p.mu.Lock()
	if expires > 0 {
		p.reg.state = RegRegistering
	}
	p.notifyLocked()
	p.mu.Unlock()

	p.mu.Lock()
	if expires > 0 && expires < p.reg.minExpires {
		expires = p.reg.minExpires
	}
	p.mu.Unlock()
	var (
		res  *sip.Response
		sent *sip.Request
		err  error
	)
	if expires == unregisterAll {
		expires = 0
		res, sent, err = p.sendRegisterAll(ctx, "")
	} else {
		res, sent, err = p.sendRegister(ctx, expires)
	}
	if err == nil && res.StatusCode == sip.StatusIntervalToBrief {
		// 423: the registrar wants a longer lifetime; remember it (refreshes
		// would hit the same wall) and ask once more.
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, perr := strconv.Atoi(strings.TrimSpace(h.Value())); perr == nil && n > expires {
				p.mu.Lock()
				p.reg.minExpires = n
				p.mu.Unlock()
				expires = n
				res, sent, err = p.sendRegister(ctx, n)
			}
		}
	}
	if sent != nil {
		p.mu.Lock()
		p.reg.cseq = sent.CSeq().SeqNo
		p.mu.Unlock()
	}
	if err != nil {
		code, reason := 0, ""
		if res != nil {
			code, reason = res.StatusCode, res.Reason
		}
		p.setRegResult(RegFailed, code, reason, err, nil, 0)
		return err
	}
	switch {
	case res.StatusCode == sip.StatusForbidden:
		err = fmt.Errorf("%w: %s", ErrForbidden, res.Reason)
	case !res.IsSuccess():
		err = &ResponseError{Code: res.StatusCode, Reason: res.Reason}
	}
	if err != nil {
		p.setRegResult(RegFailed, res.StatusCode, res.Reason, err, nil, 0)
		return err
	}
	bindings, granted := p.parseBindings(res, sent, expires)
	state := RegRegistered
	if expires == 0 {
		state = RegUnregistered
	}
	p.setRegResult(state, res.StatusCode, res.Reason, nil, bindings, granted)
	p.log.Info("registration", "state", state, "code", res.StatusCode, "expires", granted)
	return nil
}

func (p *Phone) sendRegister(ctx context.Context, expires int) (*sip.Response, *sip.Request, error) {
	return p.sendRegisterVia(ctx, expires, "")
}

// sendRegisterVia is sendRegister through server (ip:port) instead of the
// current proxy setting when server is not empty.
func (p *Phone) sendRegisterVia(ctx context.Context, expires int, server string) (*sip.Response, *sip.Request, error) {
	s := p.currentSettings()
	req := p.newRegister(s)
	contact := p.contactHeader(s)
	p.mu.Lock()
	prev := p.reg.contact
	p.mu.Unlock()
	if expires == 0 && prev != "" {
		// Remove the binding we made, even if contact_addr changed since.
		var u sip.Uri
		if err := sip.ParseUri(prev, &u); err == nil {
			contact = &sip.ContactHeader{Address: u}
		}
	}
	req.AppendHeader(contact)
	exp := sip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if err := p.toServer(req, server); err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	p.reg.contact = contact.Address.String()
	p.mu.Unlock()
	res, sent, err := p.doAuth(ctx, req)
	return res, sent, err
}

// sendRegisterAll sends REGISTER Contact: * Expires: 0 through server
// ("" = the current proxy): every binding of the AOR goes.
func (p *Phone) sendRegisterAll(ctx context.Context, server string) (*sip.Response, *sip.Request, error) {
	req := p.newRegister(p.currentSettings())
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	exp := sip.ExpiresHeader(0)
	req.AppendHeader(&exp)
	if err := p.toServer(req, server); err != nil {
		return nil, nil, err
	}
	return p.doAuth(ctx, req)
}

// newRegister is the next REGISTER to our registrar. RFC 3261 §10.2: To
// and From are the AOR; one Call-ID for all our registrations with this
// registrar, CSeq increasing.
func (p *Phone) newRegister(s liveSettings) *sip.Request {
	host, port := splitDomain(p.cfg.Domain)
	ruri := sip.Uri{Scheme: "sip", Host: host, Port: port}
	p.mu.Lock()
	p.reg.cseq++
	cseq, callID := p.reg.cseq, p.reg.callID
	p.mu.Unlock()
	req := p.newRequest(sip.REGISTER, ruri, p.aor(), callID, cseq, s)
	req.From().Address = p.aor()
	return req
}

// toServer routes req like every request (toProxy), but to server
// (ip:port) instead when it is not empty.
func (p *Phone) toServer(req *sip.Request, server string) error {
	if err := p.toProxy(req); err != nil {
		return err
	}
	if server != "" {
		req.SetDestination(server)
	}
	return nil
}

// parseBindings reads the Contact list of a 2xx (RFC 3261 §10.2.4): every
// binding of the AOR, ours among them, each with its granted expiry.
func (p *Phone) parseBindings(res *sip.Response, sent *sip.Request, asked int) ([]RegBinding, int) {
	hdrExpires := -1
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil {
			hdrExpires = n
		}
	}
	var mine *sip.Uri
	if c := sent.Contact(); c != nil {
		mine = &c.Address
	}
	granted := -1
	var out []RegBinding
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		exp := hdrExpires
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				exp = n
			}
		}
		b := RegBinding{Contact: c.Address.String(), Expires: exp}
		if mine != nil && sameContact(c.Address, *mine) {
			b.Mine = true
			granted = exp
		}
		out = append(out, b)
	}
	if granted < 0 {
		// A registrar that lists no contacts (or rewrote ours beyond
		// recognition) still granted something: trust Expires, else our ask.
		granted = asked
		if hdrExpires >= 0 {
			granted = hdrExpires
		}
	}
	return out, granted
}

func sameContact(a, b sip.Uri) bool {
	pa, pb := a.Port, b.Port
	if pa == 0 {
		pa = 5060
	}
	if pb == 0 {
		pb = 5060
	}
	return a.User == b.User && a.Host == b.Host && pa == pb
}

func (p *Phone) setRegResult(state RegState, code int, reason string, err error, bindings []RegBinding, granted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	r := &p.reg
	r.state, r.code, r.reason = state, code, reason
	r.err = ""
	if err != nil {
		r.err = err.Error()
		r.refreshAt = now.Add(failureRetry)
		if errors.Is(err, ErrClosed) {
			r.refreshAt = time.Time{}
		}
	} else {
		r.bindings = bindings
		switch state {
		case RegRegistered:
			r.expiresAt = now.Add(time.Duration(granted) * time.Second)
			// Re-register at about half the lifetime, as phones do, so one
			// lost REGISTER does not drop the binding.
			r.refreshAt = now.Add(time.Duration(granted) * time.Second / 2)
		default:
			r.expiresAt, r.refreshAt = time.Time{}, time.Time{}
		}
	}
	p.notifyLocked()
}

func (p *Phone) registrationLoop() {
	defer p.wg.Done()
	ctx, cancel := p.lifetime()
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.regKick:
		case <-timer.C:
		}
		p.mu.Lock()
		wanted, refreshAt := p.reg.wanted, p.reg.refreshAt
		p.mu.Unlock()
		if !wanted {
			continue
		}
		if wait := time.Until(refreshAt); !refreshAt.IsZero() && wait > 0 {
			timer.Reset(wait)
			continue
		}
		if err := p.register(ctx, p.cfg.Expires); err != nil {
			p.log.Warn("registration failed", "err", err)
		}
		p.mu.Lock()
		next := time.Until(p.reg.refreshAt)
		p.mu.Unlock()
		if next <= 0 {
			next = failureRetry
		}
		timer.Reset(next)
	}
}

// lifetime is a context that ends when the phone closes, for background
// work that has no caller.
func (p *Phone) lifetime() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (p *Phone) regStatus() RegStatus {
	r := &p.reg
	aor := p.aor()
	st := RegStatus{
		State:     r.state,
		AOR:       aor.String(),
		Registrar: p.settings.Proxy,
		Contact:   r.contact,
		CallID:    r.callID,
		Code:      r.code,
		Reason:    r.reason,
		Error:     r.err,
		Bindings:  r.bindings,
	}
	if r.state == RegRegistered {
		st.Expires = r.expiresAt
		st.ExpiresIn = max(0, int(time.Until(r.expiresAt).Seconds()))
		st.RefreshAt = r.refreshAt
	}
	return st
}
