package sbc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// tokenParam is the Contact URI parameter that names a registration in the
// SBC's cache: the registrar stores sip:alice@<sbc core>;sbc=<tok> and the
// proxy sends alice's calls there.
const tokenParam = "sbc"

// registration is what the SBC remembers of a phone that registered
// through it: how the phone wants to be addressed (its Contact as written)
// and where it really is (the source of its REGISTER on the wire — never
// the Via or Contact addresses, which a NATed phone fills with its private
// address). Fields are guarded by SBC.mu.
type registration struct {
	token      string
	aor        string
	contact    *sip.ContactHeader // as the phone wrote it
	source     netip.AddrPort
	transport  string
	nated      bool
	expires    time.Time
	updated    time.Time
	lastPing   time.Time
	pingResult string
	pingsSent  uint64
	pingsOK    uint64
	pinging    bool
}

// onRegister forwards a phone's REGISTER to the next hop with its Contact
// replaced by the SBC's core address and a token, and the answer back with
// the phone's own Contact and, behind NAT, a short expiry.
func (s *SBC) onRegister(r realm, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	if r != access {
		s.reply(r, tx, req, src, sip.StatusForbidden, "Forbidden")
		return
	}
	s.count(func(c *Counters) { c.Registers++ })
	aor := aorOf(req.To().Address)
	var contacts []*sip.ContactHeader
	wildcard := false
	for _, h := range req.GetHeaders("Contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if ch.Address.Wildcard {
			wildcard = true
			continue
		}
		contacts = append(contacts, ch)
	}
	if wildcard && len(contacts) > 0 {
		s.reply(r, tx, req, src, sip.StatusBadRequest, "Bad Request: Contact * with other Contacts")
		return
	}
	headerExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			s.reply(r, tx, req, src, sip.StatusBadRequest, "Bad Request: Expires")
			return
		}
		headerExpires = n
	}
	nated := s.behindNAT(req, src)
	transport := strings.ToLower(req.Transport())

	// One token per (AOR, Contact): a refresh keeps its token, so the
	// binding at the registrar is refreshed rather than duplicated. A new
	// token is only filed once the registrar accepted it (registered), so
	// REGISTERs that fail cannot grow the table.
	toks := make([]string, len(contacts))
	s.mu.Lock()
	for i, ch := range contacts {
		tok, ok := s.regKeys[aor+"\x00"+ch.Address.String()]
		if !ok {
			tok = sip.GenerateTagN(12)
		}
		toks[i] = tok
	}
	s.mu.Unlock()

	out := sip.NewRequest(sip.REGISTER, *req.Recipient.Clone())
	out.AppendHeader(sip.HeaderClone(req.From()))
	out.AppendHeader(sip.HeaderClone(req.To()))
	cid := sip.CallIDHeader(s.mappedCallID(sipdialog.CallID(req)))
	out.AppendHeader(&cid)
	out.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.REGISTER})
	out.AppendHeader(maxForwards(req))
	if wildcard {
		out.AppendHeader(sip.HeaderClone(req.Contact()))
	}
	for i, ch := range contacts {
		out.AppendHeader(s.coreContact(ch, toks[i]))
	}
	copyHeaders(out, req, passRequest)
	if ua := s.userAgentTowards(core, req, "User-Agent"); ua != nil {
		out.AppendHeader(ua)
	}
	out.SetDestination(s.cfg.NextHop.String())
	out.SetTransport("UDP")

	ctx, cancel := s.lifetime(32 * time.Second)
	defer cancel()
	res, err := s.do(ctx, core, out)
	if err != nil {
		s.log.Warn("REGISTER not answered by next hop", "aor", aor, "next_hop", s.cfg.NextHop, "err", err)
		s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
		return
	}
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	copyHeaders(back, res, passResponse)
	s.serverHeaders(back, res)
	if res.IsSuccess() {
		// The expiry is per Contact (ours, shortened for NAT); the
		// registrar's Expires header would contradict it.
		for back.RemoveHeader("Expires") {
		}
		s.registered(back, res, aor, contacts, toks, wildcard, src, transport, nated, headerExpires)
	}
	s.log.Info("REGISTER relayed", "aor", aor, "code", res.StatusCode, "source", src, "nated", nated)
	s.respond(r, tx, back, src)
}

// registered updates the cache from the registrar's 200 and writes the
// phone's bindings into the response: each Contact as the phone wrote it,
// with the expiry the SBC grants (short behind NAT).
func (s *SBC) registered(back, res *sip.Response, aor string, contacts []*sip.ContactHeader, toks []string,
	wildcard bool, src netip.AddrPort, transport string, nated bool, headerExpires int) {
	// What the registrar granted each of our tokens.
	granted := map[string]int{}
	for _, h := range res.GetHeaders("Contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		tok, ok := ch.Address.UriParams.Get(tokenParam)
		if !ok {
			continue
		}
		exp := headerExpires
		if v, ok := ch.Params.Get("expires"); ok {
			exp, _ = strconv.Atoi(v)
		} else if h := res.GetHeader("Expires"); h != nil {
			exp, _ = strconv.Atoi(strings.TrimSpace(h.Value()))
		}
		granted[tok] = exp
	}
	now := time.Now()
	natMax := int(s.settings.get().NATExpires / time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if wildcard {
		for tok, reg := range s.regs {
			if reg.aor == aor {
				s.dropRegLocked(tok)
			}
		}
	}
	for i, ch := range contacts {
		tok := toks[i]
		exp, ok := granted[tok]
		if !ok || exp <= 0 {
			s.dropRegLocked(tok)
			continue
		}
		if nated && exp > natMax {
			exp = natMax
		}
		reg := s.regs[tok]
		if reg == nil {
			reg = &registration{token: tok, aor: aor}
			s.regs[tok] = reg
		}
		reg.contact = ch.Clone()
		reg.source, reg.transport, reg.nated = src, transport, nated
		reg.expires, reg.updated = now.Add(time.Duration(exp)*time.Second), now
		s.regKeys[aor+"\x00"+ch.Address.String()] = tok
		out := ch.Clone()
		out.Params = sip.NewParams()
		for _, p := range ch.Params.Keys() {
			if p != "expires" {
				v, _ := ch.Params.Get(p)
				out.Params.Add(p, v)
			}
		}
		out.Params.Add("expires", strconv.Itoa(exp))
		back.AppendHeader(out)
	}
	// The phone's other live bindings through this SBC (another device
	// of the same AOR), as a registrar would list them.
	for tok, reg := range s.regs {
		if reg.aor != aor || contains(toks, tok) {
			continue
		}
		if left := int(time.Until(reg.expires) / time.Second); left > 0 {
			out := reg.contact.Clone()
			out.Params = sip.NewParams()
			out.Params.Add("expires", strconv.Itoa(left))
			back.AppendHeader(out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// staleKeep is how long an expired registration is kept (unusable) so a
// late refresh or un-REGISTER from the phone still maps to the token the
// registrar knows.
const staleKeep = time.Hour

// dropRegLocked forgets a registration and its token; s.mu held.
func (s *SBC) dropRegLocked(tok string) {
	reg := s.regs[tok]
	if reg == nil {
		return
	}
	delete(s.regs, tok)
	if reg.contact != nil {
		delete(s.regKeys, reg.aor+"\x00"+reg.contact.Address.String())
	}
	s.log.Info("registration removed", "aor", reg.aor, "token", tok)
}

// lookupReg finds a live (unexpired) registration by token.
func (s *SBC) lookupReg(tok string) *registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := s.regs[tok]
	if reg == nil || !reg.live(time.Now()) {
		return nil
	}
	return reg
}

func (r *registration) live(now time.Time) bool { return now.Before(r.expires) }

// expireRegs forgets registrations expired for longer than staleKeep;
// expired ones are already unusable (lookupReg, pings, status).
func (s *SBC) expireRegs(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, reg := range s.regs {
		if now.After(reg.expires.Add(staleKeep)) {
			s.dropRegLocked(tok)
		}
	}
}

// coreContact is the Contact the registrar gets for a phone's binding:
// the SBC's core address, the phone's user part, the token. Contact
// parameters the phone chose (expires, q, +sip.instance) go along.
func (s *SBC) coreContact(ch *sip.ContactHeader, tok string) *sip.ContactHeader {
	a := s.ep[core].Addr()
	u := sip.Uri{Scheme: "sip", User: ch.Address.User, Host: a.Addr().String(), Port: int(a.Port()), UriParams: sip.NewParams()}
	u.UriParams.Add(tokenParam, tok)
	out := &sip.ContactHeader{Address: u, Params: sip.NewParams()}
	for _, k := range ch.Params.Keys() {
		v, _ := ch.Params.Get(k)
		out.Params.Add(k, v)
	}
	return out
}

// behindNAT says whether a REGISTER's writer lies about its address:
// its Contact or Via names another ip:port than the packet came from.
func (s *SBC) behindNAT(req *sip.Request, src netip.AddrPort) bool {
	if via := req.Via(); via != nil {
		if !sameAddr(via.Host, via.Port, src) {
			return true
		}
	}
	for _, h := range req.GetHeaders("Contact") {
		if ch, ok := h.(*sip.ContactHeader); ok && !ch.Address.Wildcard && !sameAddr(ch.Address.Host, ch.Address.Port, src) {
			return true
		}
	}
	return false
}

func sameAddr(host string, port int, src netip.AddrPort) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false // a name: cannot be verified, treat as NATed
	}
	if port == 0 {
		port = 5060
	}
	return ip.Unmap() == src.Addr() && uint16(port) == src.Port()
}

// mappedCallID gives a phone's registration Call-ID a stable core-side
// twin: the registrar sees one Call-ID per phone with the phone's growing
// CSeq (its replay check holds), and the phone's Call-ID (often carrying
// its private IP) does not reach the core.
func (s *SBC) mappedCallID(phoneCallID string) string {
	sum := sha256.Sum256([]byte(s.ep[core].Addr().String() + "\x00" + phoneCallID))
	return "reg-" + hex.EncodeToString(sum[:10]) + "@" + s.ep[core].Addr().Addr().String()
}

// aorOf is the address-of-record of a To URI: scheme, user, host.
func aorOf(u sip.Uri) string {
	scheme := u.Scheme
	if scheme == "" {
		scheme = "sip"
	}
	if u.User == "" {
		return fmt.Sprintf("%s:%s", scheme, u.Host)
	}
	return fmt.Sprintf("%s:%s@%s", scheme, u.User, u.Host)
}

// maxForwards is the request's Max-Forwards less one (70 without one):
// a B2BUA still must not let a request loop between its two sides.
func maxForwards(req *sip.Request) *sip.MaxForwardsHeader {
	n := 70
	if mf := req.MaxForwards(); mf != nil {
		n = int(mf.Val()) - 1
	}
	if n < 0 {
		n = 0
	}
	h := sip.MaxForwardsHeader(n)
	return &h
}
