package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

// target is one place a request is forwarded to (one branch).
type target struct {
	// ruri is the Request-URI of the branch; nil keeps the request's.
	ruri *sip.Uri
	// routes are pushed in front of the request's Route set (a binding's
	// Path, RFC 3327).
	routes []sip.Uri
	// dest and transport are where the packet goes: the next hop.
	dest      netip.AddrPort
	transport string
	// why is for logs: "route", "contact", "source", "path", "ruri".
	why string
	// path is a Path header value to add (REGISTER towards the registrar).
	path string
}

// refusal is a locally generated final response.
type refusal struct {
	code    int
	reason  string
	warning string
}

func refuse(code int, reason, warning string) *refusal {
	return &refusal{code: code, reason: reason, warning: warning}
}

// addReceived writes received= and, when the phone asked with a bare rport,
// rport= into the top Via (RFC 3261 §18.2.1, RFC 3581 §4), so the phone can
// read its public address from responses.
func addReceived(w *sip.Request) {
	via := w.Via()
	if via == nil {
		return
	}
	src, err := sipnet.Source(w)
	if err != nil {
		return
	}
	if via.Params == nil {
		via.Params = sip.NewParams()
	}
	via.Params.Add("received", src.Addr().String())
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		via.Params.Add("rport", strconv.Itoa(int(src.Port())))
	}
}

// loopHash is the loop-detection part of our Via branch (RFC 3261 §16.6
// step 8): a hash of what decides where the request goes. The same request
// coming back unchanged hashes the same (a loop, 482); one that came back
// changed, e.g. retargeted by a PBX, hashes differently (a spiral, fine).
// The received top Via is left out on purpose: in a loop it is the
// previous hop's, never ours, so including it would hide every loop.
func loopHash(r *sip.Request) string {
	h := fnv.New64a()
	write := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	write(r.Recipient.String())
	if f := r.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		write(tag)
	}
	if t := r.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		write(tag)
	}
	if c := r.CallID(); c != nil {
		write(c.Value())
	}
	if c := r.CSeq(); c != nil {
		write(strconv.FormatUint(uint64(c.SeqNo), 10))
	}
	for _, name := range []string{"Route", "Proxy-Require", "Proxy-Authorization"} {
		for _, hd := range r.GetHeaders(name) {
			write(hd.Value())
		}
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

func branchPrefix(hash string) string { return sip.RFC3261BranchMagicCookie + hash + "." }

// isLoop reports a request that already went through us in the same
// state (RFC 3261 §16.3 step 4).
func (p *Proxy) isLoop(w *sip.Request, hash string) bool {
	prefix := branchPrefix(hash)
	for _, h := range w.GetHeaders("Via") {
		via, ok := h.(*sip.ViaHeader)
		if !ok || !p.isOurSentBy(via) {
			continue
		}
		if b, _ := via.Params.Get("branch"); strings.HasPrefix(b, prefix) {
			return true
		}
	}
	return false
}

func (p *Proxy) isOurSentBy(via *sip.ViaHeader) bool {
	ip, err := netip.ParseAddr(strings.Trim(via.Host, "[]"))
	if err != nil {
		return false
	}
	port := via.Port
	if port == 0 {
		port = sip.DefaultPort(via.Transport)
	}
	return p.isOurAddr(ip.Unmap(), port)
}

func (p *Proxy) isOurAddr(ip netip.Addr, port int) bool {
	for _, e := range p.eps {
		if e.addr.Addr() == ip && int(e.addr.Port()) == port {
			return true
		}
	}
	return false
}

func (p *Proxy) isOurIP(ip netip.Addr) bool {
	for _, e := range p.eps {
		if e.addr.Addr() == ip {
			return true
		}
	}
	return false
}

// isUs reports a URI naming this proxy (a Route or Record-Route entry we
// wrote, or a phone's outbound-proxy setting).
func (p *Proxy) isUs(u sip.Uri) bool {
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	port := u.Port
	if port == 0 {
		port = defaultPort(u)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.isOurAddr(ip.Unmap(), port)
	}
	return p.cfg.Domain != "" && host == p.cfg.Domain && u.Port == 0
}

// isOurRecordRoute reports a URI of the form we put in Record-Route.
func (p *Proxy) isOurRecordRoute(u sip.Uri) bool {
	ip, port, ok := uriIPPort(u)
	return ok && p.isOurAddr(ip.Unmap(), port)
}

// uriIPPort is the IP address a URI names as its host and its port (the
// transport's default when none is written); false for a host name.
func uriIPPort(u sip.Uri) (netip.Addr, int, bool) {
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return netip.Addr{}, 0, false
	}
	port := u.Port
	if port == 0 {
		port = defaultPort(u)
	}
	return ip, port, true
}

// isOurDomain reports a Request-URI host we route by location.
func (p *Proxy) isOurDomain(u sip.Uri) bool {
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if host == "" {
		return false
	}
	if p.cfg.Domain != "" && host == p.cfg.Domain {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.isOurIP(ip.Unmap())
	}
	return false
}

func defaultPort(u sip.Uri) int {
	if strings.EqualFold(u.Scheme, "sips") {
		return 5061
	}
	return 5060
}

// preRoute applies RFC 3261 §16.4: undo a strict-routing previous hop
// (it put our Record-Route URI in the Request-URI and the real target in
// the last Route), then pop every leading Route entry that is us (two of
// them when we record-routed twice across legs). It reports whether the
// request named us on its way in (a Route entry, or our Record-Route URI
// as a strict router's Request-URI): in a dialog, that is the proof we
// record-routed it.
func (p *Proxy) preRoute(w *sip.Request) (ours bool) {
	routes := routeURIs(w)
	// Only a URI we record-route with (our IP:port, no user) counts: a
	// "REGISTER sip:domain" is not a strict router's doing.
	if len(routes) > 0 && w.Recipient.User == "" && p.isOurRecordRoute(w.Recipient) {
		last := routes[len(routes)-1]
		w.Recipient = last
		routes = routes[:len(routes)-1]
		ours = true
	}
	n := 0
	for n < len(routes) && p.isUs(routes[n]) {
		n++
	}
	setRoutes(w, routes[n:])
	return ours || n > 0
}

func routeURIs(m sip.Message) []sip.Uri {
	var out []sip.Uri
	for _, h := range m.GetHeaders("Route") {
		if r, ok := h.(*sip.RouteHeader); ok {
			out = append(out, *r.Address.Clone())
		}
	}
	return out
}

// headerEditor is the part of sipgo's messages that edits headers.
type headerEditor interface {
	GetHeaders(name string) []sip.Header
	RemoveHeader(name string) bool
	AppendHeader(h sip.Header)
}

func setRoutes(m headerEditor, routes []sip.Uri) {
	removeHeaders(m, "Route")
	for _, u := range routes {
		m.AppendHeader(&sip.RouteHeader{Address: u})
	}
}

// removeHeaders removes every header called name, whatever its case on
// the wire.
func removeHeaders(m headerEditor, name string) {
	for _, h := range m.GetHeaders(name) {
		m.RemoveHeader(h.Name())
	}
}

func toTag(r *sip.Request) string {
	if t := r.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		return tag
	}
	return ""
}

// uriTarget is the next hop named by a URI (a Route entry or a
// Request-URI): its host, port and transport parameter.
func uriTarget(ctx context.Context, u sip.Uri) (netip.AddrPort, string, error) {
	if !strings.EqualFold(u.Scheme, "sip") && !strings.EqualFold(u.Scheme, "sips") {
		return netip.AddrPort{}, "", fmt.Errorf("no route for %s URI", u.Scheme)
	}
	transport := sipnet.UDP
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		transport = strings.ToLower(v)
	}
	if strings.EqualFold(u.Scheme, "sips") && transport == sipnet.UDP {
		transport = "tls"
	}
	if transport != sipnet.UDP && transport != sipnet.TCP {
		return netip.AddrPort{}, "", fmt.Errorf("transport %q not served", transport)
	}
	port := u.Port
	if port == 0 {
		port = defaultPort(u)
	}
	if port < 1 || port > 65535 {
		return netip.AddrPort{}, "", fmt.Errorf("bad port %d", port)
	}
	host := strings.Trim(u.Host, "[]")
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if host == "" {
			return netip.AddrPort{}, "", errors.New("empty host")
		}
		// RFC 3263 in full (NAPTR/SRV) is not needed in the lab, and no
		// query may leave it: the hosts file only (sipnet.Resolver).
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ips, lerr := sipnet.Resolver().LookupNetIP(ctx, "ip4", host)
		if lerr != nil || len(ips) == 0 {
			return netip.AddrPort{}, "", fmt.Errorf("resolve %q: %w", host, lerr)
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), transport, nil
}

// targets decides where a request goes (RFC 3261 §16.5): by its remaining
// Route set, by a static route (Config.Routes), by a user route
// (Config.UserRoutes) or location for our domain,
// or by its Request-URI.
func (p *Proxy) targets(ctx context.Context, w *sip.Request, s Settings) ([]target, *refusal) {
	if r := w.Route(); r != nil {
		dest, tr, err := uriTarget(ctx, r.Address)
		if err != nil {
			return nil, refuse(sip.StatusBadRequest, "Bad Request", "unroutable Route: "+err.Error())
		}
		return []target{{dest: dest, transport: tr, why: "route"}}, nil
	}
	if t, ok := p.staticRoute(w.Recipient); ok {
		return []target{t}, nil
	}
	if p.isOurDomain(w.Recipient) {
		if w.Recipient.User == "" {
			// Addressed to the proxy itself: answer pings, refuse the rest.
			if w.Method == sip.OPTIONS {
				return nil, refuse(sip.StatusOK, "OK", "")
			}
			return nil, refuse(sip.StatusNotFound, "Not Found", "no user in Request-URI")
		}
		// Numbers belong to the PBX before location is asked (UserRoute).
		if t, ok := p.userRoute(w.Recipient); ok {
			return []target{t}, nil
		}
		return p.lookup(ctx, w, s)
	}
	if toTag(w) != "" && s.ContactFixup != FixupOff {
		// An in-dialog request's Request-URI is the peer's Contact as it
		// wrote it; if that is a registered Contact, go where the phone
		// really is. This is why Contacts never need rewriting here: the
		// proxy stays on the path (Record-Route) and knows the way.
		if t, ok := p.contactTarget(ctx, w.Recipient, s); ok {
			return []target{t}, nil
		}
	}
	if toTag(w) != "" || p.cfg.Relay {
		dest, tr, err := uriTarget(ctx, w.Recipient)
		if err != nil {
			return nil, refuse(sip.StatusNotFound, "Not Found", "unroutable Request-URI: "+err.Error())
		}
		return []target{{dest: dest, transport: tr, why: "ruri"}}, nil
	}
	return nil, refuse(sip.StatusForbidden, "Forbidden", "relaying to other domains is off")
}

// aor is the address-of-record for a Request-URI of our domain: the
// proxy's IPs are aliases of the domain.
func (p *Proxy) aor(u sip.Uri) string {
	domain := p.cfg.Domain
	if domain == "" {
		domain = strings.ToLower(u.Host)
	}
	return "sip:" + u.User + "@" + domain
}

func (p *Proxy) lookup(ctx context.Context, w *sip.Request, s Settings) ([]target, *refusal) {
	aor := p.aor(w.Recipient)
	bindings, err := p.cfg.Location.Lookup(ctx, aor)
	if errors.Is(err, location.ErrUnknownUser) {
		return nil, refuse(sip.StatusNotFound, "Not Found", "")
	}
	if err != nil {
		p.log.Error("location lookup failed", "aor", aor, "err", err)
		return nil, refuse(sip.StatusInternalServerError, "Server Internal Error", "location service unavailable")
	}
	now := time.Now()
	bindings = slices.DeleteFunc(slices.Clone(bindings), func(b location.Binding) bool {
		return !b.Expires.IsZero() && b.Remaining(now) == 0
	})
	// Most preferred first: highest q (unset counts as 1.0), then the most
	// recently refreshed.
	slices.SortStableFunc(bindings, func(a, b location.Binding) int {
		if c := cmp.Compare(qOf(b), qOf(a)); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
	var out []target
	seen := map[string]bool{}
	for _, b := range bindings {
		t, err := p.bindingTarget(ctx, b, s)
		if err != nil {
			p.log.Warn("unusable binding", "aor", aor, "contact", b.ContactURI, "err", err)
			continue
		}
		key := t.ruri.String() + "|" + t.dest.String() + "|" + t.transport
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, t)
		if len(out) == p.cfg.MaxBranches {
			break
		}
	}
	if len(out) == 0 {
		return nil, refuse(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", "")
	}
	return out, nil
}

func qOf(b location.Binding) int {
	if b.Q <= 0 {
		return 1000
	}
	return b.Q
}

// bindingTarget turns a binding into a branch. The Request-URI is always
// the Contact as written (the phone recognises itself by it); what the
// contact_fixup toggle changes is where the packet is sent.
func (p *Proxy) bindingTarget(ctx context.Context, b location.Binding, s Settings) (target, error) {
	var ruri sip.Uri
	if err := sip.ParseUri(strings.Trim(strings.TrimSpace(b.ContactURI), "<>"), &ruri); err != nil {
		return target{}, fmt.Errorf("contact %q: %w", b.ContactURI, err)
	}
	t := target{ruri: &ruri}
	// A Path recorded with the binding (RFC 3327) is the way back to the
	// phone through the proxies it registered through; our own entry is
	// dropped, whatever is left is routed through.
	var path []sip.Uri
	for _, raw := range b.Path {
		var u sip.Uri
		if err := sip.ParseUri(strings.Trim(strings.TrimSpace(raw), "<>"), &u); err != nil {
			return target{}, fmt.Errorf("path %q: %w", raw, err)
		}
		path = append(path, u)
	}
	var ours []sip.Uri
	for len(path) > 0 && p.isUs(path[0]) {
		ours = append(ours, path[0])
		path = path[1:]
	}
	if len(path) > 0 {
		dest, tr, err := uriTarget(ctx, path[0])
		if err != nil {
			return target{}, fmt.Errorf("path %s: %w", path[0].String(), err)
		}
		t.routes, t.dest, t.transport, t.why = path, dest, tr, "path"
		return t, nil
	}
	fix, tests, note := fixupDecision(s.ContactFixup, b, ruri, ours)
	check := NATCheck{AOR: b.AOR, Contact: b.ContactURI, Source: b.Source.String(), Tests: tests,
		Mode: s.ContactFixup, RoutedTo: "contact", At: time.Now()}
	if fix {
		tr := strings.ToLower(b.Transport)
		if tr == "" {
			tr = sipnet.UDP
		}
		if tr != sipnet.UDP && tr != sipnet.TCP {
			return target{}, fmt.Errorf("transport %q not served", tr)
		}
		t.dest = netip.AddrPortFrom(b.Source.Addr().Unmap(), b.Source.Port())
		why := note
		if len(tests) > 0 {
			why += ": " + strings.Join(tests, ",")
		}
		t.transport, t.why = tr, "source ("+why+")"
		check.RoutedTo = "source"
	} else {
		dest, tr, err := uriTarget(ctx, ruri)
		if err != nil {
			return target{}, err
		}
		detail := note
		if s.ContactFixup == FixupAuto {
			detail += ": no NAT test fired"
		}
		t.dest, t.transport, t.why = dest, tr, "contact ("+detail+")"
	}
	p.nat.record(check)
	return t, nil
}

// contactTarget finds the binding whose Contact is u and returns the way
// to it (the address its REGISTER came from), keeping u as Request-URI.
func (p *Proxy) contactTarget(ctx context.Context, u sip.Uri, s Settings) (target, bool) {
	if u.User == "" || (!strings.EqualFold(u.Scheme, "sip") && !strings.EqualFold(u.Scheme, "sips")) {
		return target{}, false
	}
	bindings, err := p.cfg.Location.Lookup(ctx, p.aor(u))
	if err != nil {
		return target{}, false
	}
	for _, b := range bindings {
		var c sip.Uri
		if sip.ParseUri(strings.Trim(strings.TrimSpace(b.ContactURI), "<>"), &c) != nil || !sameContact(c, u) {
			continue
		}
		t, err := p.bindingTarget(ctx, b, s)
		if err != nil {
			return target{}, false
		}
		t.ruri, t.why = nil, t.why+" (dialog)"
		return t, true
	}
	return target{}, false
}

func sameContact(a, b sip.Uri) bool {
	pa, pb := a.Port, b.Port
	if pa == 0 {
		pa = defaultPort(a)
	}
	if pb == 0 {
		pb = defaultPort(b)
	}
	return a.User == b.User && strings.EqualFold(strings.Trim(a.Host, "[]"), strings.Trim(b.Host, "[]")) && pa == pb
}
