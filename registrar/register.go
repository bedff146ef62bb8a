package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipnet"
)

// checkOpts: the registrar is a UAS that implements Path (RFC 3327).
var checkOpts = sipcheck.Options{Role: sipcheck.UAS, Supported: []string{"path"}}

// Handle answers one request. It returns nil only for ACK, which is never
// answered. For a REGISTER that changes bindings it returns after the
// change is on disk.
func (r *Registrar) Handle(ctx context.Context, req *sip.Request) *sip.Response {
	res, h := r.handle(req)
	if h == nil {
		return res
	}
	select {
	case <-h.done.done:
	case <-ctx.Done():
		return reply(req, sip.StatusInternalServerError, "Server Internal Error", "stopped before the binding was stored")
	}
	if alt := h.settle(); alt != nil {
		return alt
	}
	return res
}

// handle is Handle without the wait: a response that may be sent only
// once its binding is durable comes with a held (nil: send it now).
func (r *Registrar) handle(req *sip.Request) (*sip.Response, *held) {
	if req.IsAck() {
		return nil, nil
	}
	if src, err := sipnet.Source(req); err == nil {
		// The guard judges where the request was really seen: behind a
		// trusted proxy, the Path's received= (the proxy itself is never
		// blocked).
		if req.Method == sip.REGISTER {
			src, _ = r.seenFrom(req, reqLog{l: r.log})
		}
		if v := r.guard.Check(src.Addr(), string(req.Method)); !v.Allow {
			return blockedResponse(req, v), nil
		}
	}
	if p := sipcheck.Request(req, checkOpts); p != nil {
		r.log.Info("request refused", "call_id", callID(req), "method", string(req.Method), "code", p.Code, "detail", p.Detail)
		return sipcheck.Respond(req, p), nil
	}
	switch req.Method {
	case sip.REGISTER:
		return r.register(req)
	case sip.OPTIONS:
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", allow))
		res.AppendHeader(sip.NewHeader("Supported", "path"))
		return res, nil
	case sip.CANCEL:
		// A REGISTER is answered at once, so there is never anything
		// left to cancel.
		return sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil), nil
	}
	res := sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", allow))
	return res, nil
}

// held is a REGISTER's 200, built but not to be sent before the journal
// record of its change is durable.
type held struct {
	done *batch
	req  *sip.Request
	log  reqLog
	// logged is the "registered" record, written once the change is
	// durable.
	logged func()
}

// settle is what to send once h.done has completed: nil for the 200 as
// built, or the 500 that replaces it when the record did not reach the
// disk.
func (h *held) settle() *sip.Response {
	if err := journalErr(h.done); err != nil {
		h.log.Error("binding not stored, not acknowledged", "err", err)
		return reply(h.req, sip.StatusInternalServerError, "Server Internal Error", "cannot store binding")
	}
	if h.logged != nil {
		h.logged()
	}
	return nil
}

const allow = "REGISTER, OPTIONS"

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// reply builds a response with a reason phrase and, for the lab's sake, a
// Warning header saying precisely why.
func reply(req *sip.Request, code int, reason, detail string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if detail != "" {
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 siplab %q", strings.ReplaceAll(detail, `"`, "'"))))
	}
	return res
}

// serves reports whether host[:port] names this registrar's domain.
func (r *Registrar) serves(host string, port int) bool {
	host = strings.ToLower(host)
	if host == r.cfg.Domain && port == 0 {
		return true
	}
	hp := host
	if port > 0 {
		hp = host + ":" + strconv.Itoa(port)
	}
	if hp == r.cfg.Domain {
		return true
	}
	for _, a := range r.cfg.Aliases {
		if a == hp || (a == host && port == 0) || (a == host && !strings.Contains(a, ":")) {
			return true
		}
	}
	return false
}

// contactChange is one Contact of a REGISTER, validated.
type contactChange struct {
	hdr     *sip.ContactHeader
	uri     string
	key     string
	expires uint32
	q       int
}

func (r *Registrar) register(req *sip.Request) (*sip.Response, *held) {
	log := reqLog{l: r.log, callID: callID(req)}
	// RFC 3261 §10.3 step 1: is this registrar responsible for the domain?
	if !r.serves(req.Recipient.Host, req.Recipient.Port) {
		log.Info("register for a foreign domain", "request_uri", req.Recipient.String())
		return reply(req, sip.StatusNotFound, "Domain Not Served Here",
			"Request-URI "+req.Recipient.Host+" is not "+r.cfg.Domain), nil
	}
	// Step 3: authenticate.
	d := r.auth.Authenticate(req, sipauth.WWW)
	if d.Verdict != sipauth.Accept {
		log.Debug("register not authenticated", "user", d.User, "verdict", d.Verdict.String(), "reason", d.Reason)
		if d.BadCredentials {
			if src, _ := r.seenFrom(req, log); !src.IsValid() {
				log.Info("auth failed", "src", "", "user", d.User, "reason", d.Reason)
			} else if f := r.guard.Failed(src.Addr(), d.User, d.Reason); f.Blocked != nil {
				// The guessing stops here: this very request already
				// gets the refusal every later one will.
				return blockedResponse(req, guard.Verdict{Reason: "blocked: " + f.Blocked.Reason, RetryAfter: f.Blocked.Until.Sub(r.now())}), nil
			}
		}
		return r.auth.Respond(req, sipauth.WWW, d), nil
	}
	// Steps 4 and 5: may this user register this AOR, and does it exist?
	to := req.To().Address
	if (to.Scheme != "sip" && to.Scheme != "sips") || !r.serves(to.Host, to.Port) {
		log.Info("register for a foreign AOR", "to", to.String(), "user", d.User)
		return reply(req, sip.StatusNotFound, "Not Found", "To "+to.String()+" is not in domain "+r.cfg.Domain), nil
	}
	if _, ok := r.users.Lookup(to.User); !ok {
		log.Info("register for an unknown user", "to", to.String(), "user", d.User)
		return reply(req, sip.StatusNotFound, "Not Found", "no user "+strconv.Quote(to.User)+" in "+r.cfg.Domain), nil
	}
	if to.User != d.User {
		log.Info("register for someone else's AOR", "to", to.String(), "user", d.User)
		return reply(req, sip.StatusForbidden, "Forbidden",
			"authenticated as "+strconv.Quote(d.User)+", may not register "+strconv.Quote(to.User)), nil
	}
	aor := "sip:" + to.User + "@" + r.cfg.Domain
	log.aor = aor

	// Step 6: the Contacts.
	changes, wildcard, bad := r.contactChanges(req, log)
	if bad != nil {
		return bad, nil
	}

	src, transport := r.seenFrom(req, log)
	path := pathURIs(req)
	cseq := req.CSeq().SeqNo
	cid := callID(req)
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	now := r.now()

	// Step 7: the store applies all changes or none, and journals them.
	op := registerOp{rec: record{AOR: aor, Clear: wildcard}, callID: cid, cseq: cseq, now: now, maxContacts: r.cfg.MaxContacts}
	for _, c := range changes {
		op.touched = append(op.touched, c.key)
		if c.expires == 0 {
			op.rec.Del = append(op.rec.Del, c.uri)
			op.delKeys = append(op.delKeys, c.key)
			continue
		}
		op.setKeys = append(op.setKeys, c.key)
		op.rec.Set = append(op.rec.Set, location.Binding{
			AOR:        aor,
			Contact:    c.hdr.Value(),
			ContactURI: c.uri,
			Source:     src,
			Transport:  transport,
			Path:       path,
			Expires:    now.Add(time.Duration(c.expires) * time.Second),
			Q:          c.q,
			CallID:     cid,
			CSeq:       cseq,
			UserAgent:  ua,
			Updated:    now,
		})
	}
	rec := &op.rec
	cur, next, done, err := r.store.registerHeld(op)
	var ooo *outOfOrderError
	var tooMany *tooManyError
	switch {
	case errors.As(err, &ooo):
		log.Info("register out of order", "cseq", cseq, "stored_cseq", ooo.stored.CSeq, "contact", ooo.stored.ContactURI)
		return reply(req, sip.StatusInternalServerError, "Server Internal Error", ooo.Error()), nil
	case errors.As(err, &tooMany):
		log.Info("too many contacts", "contacts", tooMany.contacts, "max", tooMany.max)
		return reply(req, sip.StatusForbidden, "Too Many Contacts",
			fmt.Sprintf("at most %d contacts per user", tooMany.max)), nil
	case err != nil:
		log.Error("binding not stored, not acknowledged", "err", err)
		return reply(req, sip.StatusInternalServerError, "Server Internal Error", "cannot store binding"), nil
	}
	res := r.ok(req, next, now, path)
	var logged func()
	if len(changes) > 0 || wildcard {
		// New or removed contacts are news; plain refreshes are not, and at
		// thousands per second they would drown the log.
		level := slog.LevelDebug
		if wildcard || len(rec.Del) > 0 || added(cur, op.setKeys, now) {
			level = slog.LevelInfo
		}
		if r.log.Enabled(context.Background(), level) {
			logged = func() {
				log.Log(context.Background(), level, "registered", "contacts", len(rec.Set), "removed", len(rec.Del), "clear", wildcard,
					"bindings", len(next), "source", src.String(), "transport", transport)
			}
		}
	}
	if done == nil {
		if logged != nil {
			logged()
		}
		return res, nil
	}
	return res, &held{done: done, req: req, log: log, logged: logged}
}

// contactChanges reads a REGISTER's Contacts (RFC 3261 §10.3 step 6):
// each with its expiry (its own parameter, else Expires, else the
// default, clamped to the configured bounds) and q, or the wildcard. A
// request that cannot be applied gets its response instead.
func (r *Registrar) contactChanges(req *sip.Request, log reqLog) (changes []contactChange, wildcard bool, bad *sip.Response) {
	var wildcards int
	hdrExpires, hasHdrExpires, err := expiresHeader(req)
	if err != nil {
		return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", err.Error())
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", "unparsable Contact")
		}
		if c.Address.Wildcard {
			wildcards++
			continue
		}
		ch := contactChange{hdr: c, uri: c.Address.String()}
		ch.key = contactKey(ch.uri)
		switch v, ok := param(c.Params, "expires"); {
		case ok:
			n, err := parseDelta(v)
			if err != nil {
				return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", "Contact expires: "+err.Error())
			}
			ch.expires = n
		case hasHdrExpires:
			ch.expires = hdrExpires
		default:
			ch.expires = uint32(r.cfg.DefaultExpires / time.Second)
		}
		if v, ok := param(c.Params, "q"); ok {
			q, err := parseQ(v)
			if err != nil {
				return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", "Contact q: "+err.Error())
			}
			ch.q = q
		}
		changes = append(changes, ch)
	}
	wildcard = wildcards > 0
	if wildcard {
		// §10.2.2 / §10.3 step 6: "*" only alone and only with Expires: 0.
		if len(changes) > 0 || wildcards > 1 {
			return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", "Contact: * combined with other contacts")
		}
		if !hasHdrExpires || hdrExpires != 0 {
			return nil, false, reply(req, sip.StatusBadRequest, "Bad Request", "Contact: * requires Expires: 0")
		}
	}
	minExp := uint32(r.cfg.MinExpires / time.Second)
	maxExp := uint32(r.cfg.MaxExpires / time.Second)
	for i := range changes {
		e := changes[i].expires
		if e != 0 && e < minExp {
			log.Info("registration interval too brief", "expires", e, "min", minExp)
			res := reply(req, sip.StatusIntervalToBrief, "Interval Too Brief", "")
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.FormatUint(uint64(minExp), 10)))
			return nil, false, res
		}
		changes[i].expires = min(e, maxExp)
	}
	return changes, wildcard, nil
}

// added reports whether the contacts set (their keys) include one that
// cur did not have live.
func added(cur []entry, set []string, now time.Time) bool {
	for _, k := range set {
		if !slices.ContainsFunc(cur, func(e entry) bool { return e.key == k && e.b.Expires.After(now) }) {
			return true
		}
	}
	return false
}

// ok is the 200: every current binding with its remaining time (§10.3
// step 8), a Date so phones with no clock can set theirs, and Path echoed
// when the phone said it supports it (RFC 3327 §5.3).
func (r *Registrar) ok(req *sip.Request, list []entry, now time.Time, path []string) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, e := range list {
		left := e.b.Expires.Sub(now)
		if left <= 0 {
			continue
		}
		var c sip.ContactHeader
		dn, err := sip.ParseAddressValue(e.b.Contact, &c.Address, &c.Params)
		if err != nil {
			// Stored as parsed once; fall back to the bare URI.
			c = sip.ContactHeader{}
			sip.ParseUri(e.b.ContactURI, &c.Address)
		}
		c.DisplayName = dn
		if c.Params == nil {
			c.Params = sip.NewParams()
		}
		c.Params = slices.DeleteFunc(c.Params, func(kv sip.HeaderKV) bool { return strings.EqualFold(kv.K, "expires") })
		c.Params.Add("expires", strconv.FormatInt(int64((left+time.Second-1)/time.Second), 10))
		res.AppendHeader(&c)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http.TimeFormat)))
	if len(path) > 0 && supports(req, "path") {
		for _, h := range req.GetHeaders("Path") {
			res.AppendHeader(sip.NewHeader("Path", h.Value()))
		}
	}
	return res
}

// param reads a header parameter; parameter names are case-insensitive
// (RFC 3261 §7.3.1).
func param(hp sip.HeaderParams, name string) (string, bool) {
	for _, kv := range hp {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

func supports(req *sip.Request, tag string) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// expiresHeader reads the Expires header (delta-seconds).
func expiresHeader(req *sip.Request) (uint32, bool, error) {
	h := req.GetHeader("Expires")
	if h == nil {
		return 0, false, nil
	}
	n, err := parseDelta(strings.TrimSpace(h.Value()))
	if err != nil {
		return 0, true, fmt.Errorf("Expires: %w", err)
	}
	return n, true, nil
}

// parseDelta parses delta-seconds; values beyond 2^32-1 mean 2^32-1 (RFC
// 3261 §20.19 allows them, and they are clamped to MaxExpires anyway).
func parseDelta(v string) (uint32, error) {
	if v == "" || len(v) > 20 {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	for _, c := range []byte(v) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number of seconds", v)
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint32 {
		return math.MaxUint32, nil
	}
	return uint32(n), nil
}

// parseQ parses a q-value (RFC 3261 §20.10: 0 to 1, at most 3 decimals)
// into thousandths.
func parseQ(v string) (int, error) {
	bad := fmt.Errorf("%q is not a q-value between 0 and 1", v)
	if v == "" || len(v) > 5 {
		return 0, bad
	}
	whole, frac, _ := strings.Cut(v, ".")
	if whole != "0" && whole != "1" {
		return 0, bad
	}
	n := 0
	if whole == "1" {
		n = 1000
	}
	for i, c := range []byte(frac) {
		if c < '0' || c > '9' {
			return 0, bad
		}
		d := int(c - '0')
		if whole == "1" && d != 0 {
			return 0, bad
		}
		n += d * [3]int{100, 10, 1}[i]
	}
	return n, nil
}

// seenFrom is where the REGISTER really came from: the packet source, or,
// when a trusted proxy relayed it, what that proxy saw (the top Path URI's
// "received" and "rtransport" parameters).
func (r *Registrar) seenFrom(req *sip.Request, log reqLog) (netip.AddrPort, string) {
	transport := strings.ToLower(req.Transport())
	src, err := sipnet.Source(req)
	if err != nil {
		log.Warn("request without a usable source address", "err", err)
		return src, transport
	}
	if !r.trusted(src.Addr()) {
		return src, transport
	}
	top, ok := topPath(req)
	if !ok {
		return src, transport
	}
	recv, ok := top.UriParams.Get("received")
	if !ok {
		return src, transport
	}
	ap, err := netip.ParseAddrPort(strings.Trim(recv, `"`))
	if err != nil {
		log.Warn("trusted proxy sent an unusable Path received parameter", "received", recv, "proxy", src.String())
		return src, transport
	}
	rt := "udp"
	if v, ok := top.UriParams.Get("rtransport"); ok && v != "" {
		rt = strings.ToLower(v)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), rt
}

func (r *Registrar) trusted(a netip.Addr) bool {
	for _, p := range r.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pathEntries splits Path header values into their name-addr elements.
func pathEntries(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Path") {
		out = append(out, splitList(h.Value())...)
	}
	return out
}

func topPath(req *sip.Request) (*sip.Uri, bool) {
	es := pathEntries(req)
	if len(es) == 0 {
		return nil, false
	}
	var u sip.Uri
	var params sip.HeaderParams
	if _, err := sip.ParseAddressValue(es[0], &u, &params); err != nil {
		return nil, false
	}
	return &u, true
}

// pathURIs are the Path URIs as stored with the binding, top first.
func pathURIs(req *sip.Request) []string {
	var out []string
	for _, e := range pathEntries(req) {
		var u sip.Uri
		var params sip.HeaderParams
		if _, err := sip.ParseAddressValue(e, &u, &params); err != nil {
			continue
		}
		out = append(out, u.String())
	}
	return out
}

// splitList splits a comma-separated header value, ignoring commas inside
// <...> and quoted strings.
func splitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case c == ',' && !quoted && depth == 0:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
