package proxy

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/openrelay"
)

// relayPolicy decides, before any Route entry is followed, whether a
// request may go where its remaining Route set (ours already popped)
// points. Without it a stranger could preload "Route: <sip:victim;lr>"
// and use the proxy as an open relay: the Route is followed before the
// Request-URI's domain is ever looked at.
//
// Allowed: in-dialog requests that named us in their Route set (To tag:
// their route set came from our Record-Route, RFC 3261 §12.2.1.1; a To
// tag alone proves nothing, anybody can write one — Kamailio's default
// script answers those "404 Not here"), requests from our users who passed
// proxy authentication, everything with Relay on, and Routes whose every
// entry names a configured next hop (the registrar, a static route or a
// user route: the platform's own elements). Anything else gets 403 with
// the first refused entry in the reason phrase. Host names are refused
// without being resolved: a stranger's Route must not make us ask DNS.
func (p *Proxy) relayPolicy(ctx context.Context, w *sip.Request, authenticated, viaUs bool) *refusal {
	if p.cfg.Relay || authenticated {
		return nil
	}
	if toTag(w) != "" {
		routes := routeURIs(w)
		if viaUs || len(routes) > 0 && allNextHops(p, routes) {
			return nil
		}
		// No Route: a UA whose dialog has an empty route set still sends
		// through its outbound proxy (sipp's built-in UAS never copies
		// Record-Route). Delivering to one of our own registered users is
		// no relay.
		if len(routes) == 0 && (p.isOurDomain(w.Recipient) || p.isRegisteredContact(ctx, w.Recipient)) {
			return nil
		}
		where := openrelay.Where(w.Recipient)
		if r := routeURIs(w); len(r) > 0 {
			where = openrelay.Where(r[0])
		}
		return refuse(sip.StatusForbidden, "Relaying Denied: in-dialog request to "+where+" not routed by us",
			"request with a To tag but no Route naming this proxy: its dialog was not record-routed here")
	}
	for _, u := range routeURIs(w) {
		if p.isNextHop(u) {
			continue
		}
		where := openrelay.Where(u)
		return refuse(sip.StatusForbidden, openrelay.RouteDenied(where),
			"initial request from an unauthenticated sender preloads a Route to "+where+
				", which is neither this proxy nor one of its configured next hops")
	}
	return nil
}

// isRegisteredContact reports a URI that is, as written, the Contact of
// one of our users' bindings.
func (p *Proxy) isRegisteredContact(ctx context.Context, u sip.Uri) bool {
	if u.User == "" {
		return false
	}
	bindings, err := p.cfg.Location.Lookup(ctx, p.aor(u))
	if err != nil {
		return false
	}
	for _, b := range bindings {
		var c sip.Uri
		if sip.ParseUri(strings.Trim(strings.TrimSpace(b.ContactURI), "<>"), &c) == nil && sameContact(c, u) {
			return true
		}
	}
	return false
}

func allNextHops(p *Proxy, routes []sip.Uri) bool {
	for _, u := range routes {
		if !p.isNextHop(u) {
			return false
		}
	}
	return true
}

// isNextHop reports a URI naming, by IP and port, one of the next hops
// the proxy was configured with.
func (p *Proxy) isNextHop(u sip.Uri) bool {
	ip, port, ok := uriIPPort(u)
	if !ok {
		return false
	}
	if port < 1 || port > 65535 {
		return false
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
	if p.registrar.IsValid() && ap == p.registrar {
		return true
	}
	for _, r := range p.cfg.Routes {
		if ap == r.NextHop {
			return true
		}
	}
	for _, r := range p.cfg.UserRoutes {
		if ap == netip.AddrPortFrom(r.NextHop.Addr().Unmap(), r.NextHop.Port()) {
			return true
		}
	}
	return false
}
