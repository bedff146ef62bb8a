package proxy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// Route is a static route: requests whose Request-URI host is Domain go to
// NextHop, Request-URI untouched. It is how phones reach a platform service
// that has no registration of its own, e.g. the PBX
// (pbx.siplab.test=10.0.0.30:5060: "call 101@pbx.siplab.test"), without
// turning the proxy into an open relay (-relay): only the listed domains are
// forwarded, every other foreign domain still gets 403. Authentication is
// unchanged (our users' INVITEs are challenged before they go anywhere).
type Route struct {
	Domain  string         // lower case host name or IP of the Request-URI
	NextHop netip.AddrPort // where the request is sent (UDP)
}

func (r Route) String() string { return r.Domain + "=" + r.NextHop.String() }

// ParseRoute reads the flag form "domain=ip:port" (port defaults to 5060).
func ParseRoute(s string) (Route, error) {
	domain, hop, ok := strings.Cut(strings.TrimSpace(s), "=")
	domain = strings.ToLower(strings.TrimSpace(domain))
	hop = strings.TrimSpace(hop)
	if !ok || domain == "" || hop == "" {
		return Route{}, fmt.Errorf("%w: %q: want domain=ip:port", ErrBadRoute, s)
	}
	if strings.ContainsAny(domain, ":@;/ ") {
		return Route{}, fmt.Errorf("%w: %q: %q is not a host name", ErrBadRoute, s, domain)
	}
	ap, err := netip.ParseAddrPort(hop)
	if err != nil {
		ip, ierr := netip.ParseAddr(hop)
		if ierr != nil {
			return Route{}, fmt.Errorf("%w: %q: next hop must be ip[:port]: %w", ErrBadRoute, s, err)
		}
		ap = netip.AddrPortFrom(ip, 5060)
	}
	if ap.Port() == 0 {
		return Route{}, fmt.Errorf("%w: %q: next hop port 0", ErrBadRoute, s)
	}
	return Route{Domain: domain, NextHop: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// validateRoutes normalises the routes and refuses ambiguous ones: a route
// for our own domain would bypass the location service, two routes for one
// domain would make the choice depend on their order.
func validateRoutes(routes []Route, ownDomain string) ([]Route, error) {
	out := make([]Route, 0, len(routes))
	seen := map[string]bool{}
	for _, r := range routes {
		r.Domain = strings.ToLower(strings.TrimSpace(r.Domain))
		switch {
		case r.Domain == "":
			return nil, fmt.Errorf("%w: empty domain", ErrBadRoute)
		case !r.NextHop.IsValid() || r.NextHop.Port() == 0:
			return nil, fmt.Errorf("%w: %s: no next hop", ErrBadRoute, r.Domain)
		case r.Domain == ownDomain:
			return nil, fmt.Errorf("%w: %s is the proxy's own domain (routed by location)", ErrBadRoute, r.Domain)
		case seen[r.Domain]:
			return nil, fmt.Errorf("%w: %s listed twice", ErrBadRoute, r.Domain)
		}
		seen[r.Domain] = true
		r.NextHop = netip.AddrPortFrom(r.NextHop.Addr().Unmap(), r.NextHop.Port())
		out = append(out, r)
	}
	return out, nil
}

// staticRoute finds the route for a Request-URI's host, ignoring its port
// (the route names the next hop).
func (p *Proxy) staticRoute(u sip.Uri) (target, bool) {
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	for _, r := range p.cfg.Routes {
		if r.Domain == host {
			return target{dest: r.NextHop, transport: sipnet.UDP, why: "static route " + r.Domain}, true
		}
	}
	return target{}, false
}
