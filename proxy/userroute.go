package proxy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// UserRoute is a static route by Request-URI user for our own domain:
// requests whose user matches Pattern (anchored: the whole user) go to
// NextHop, Request-URI untouched. It is how a hosted platform sends
// dialled numbers to its PBX: "call 101" (sip:101@siplab.test) reaches
// the PBX's extension 101, "*97" its voicemail, "+15551234567" its trunk
// plan, while "bob" is still found by location.
//
// User routes are checked BEFORE the location lookup, as real platforms
// do (numbers belong to the PBX; a phone that registers as "101" cannot
// steal the extension). Authentication is unchanged: our users' INVITEs
// are challenged before any routing.
type UserRoute struct {
	// Expr is the regular expression as written (Go RE2 syntax).
	Expr    string
	NextHop netip.AddrPort
	re      *regexp.Regexp
}

func (r UserRoute) String() string { return r.Expr + "=" + r.NextHop.String() }

// Match reports whether the whole user matches the route's expression.
func (r UserRoute) Match(user string) bool { return r.re != nil && r.re.MatchString(user) }

// ParseUserRoute reads the flag form "REGEX=ip[:port]" (port defaults to
// 5060). The split is at the last '=' (an address has none), so the
// expression may contain '='. The expression is anchored: "[0-9]+" matches
// "101", never "bob101".
func ParseUserRoute(s string) (UserRoute, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '=')
	if i <= 0 || i == len(s)-1 {
		return UserRoute{}, fmt.Errorf("%w: %q: want REGEX=ip:port", ErrBadRoute, s)
	}
	expr, hop := s[:i], strings.TrimSpace(s[i+1:])
	ap, err := netip.ParseAddrPort(hop)
	if err != nil {
		ip, ierr := netip.ParseAddr(hop)
		if ierr != nil {
			return UserRoute{}, fmt.Errorf("%w: %q: next hop must be ip[:port]: %w", ErrBadRoute, s, err)
		}
		ap = netip.AddrPortFrom(ip, 5060)
	}
	r := UserRoute{Expr: expr, NextHop: ap}
	if err := r.compile(); err != nil {
		return UserRoute{}, err
	}
	return r, nil
}

// compile validates the route and builds its anchored expression.
func (r *UserRoute) compile() error {
	if strings.TrimSpace(r.Expr) == "" {
		return fmt.Errorf("%w: empty user expression", ErrBadRoute)
	}
	if !r.NextHop.IsValid() || r.NextHop.Port() == 0 {
		return fmt.Errorf("%w: user route %q: no next hop (ip:port)", ErrBadRoute, r.Expr)
	}
	// Anchoring around a group keeps "a|b" meaning "^(a|b)$", not "^a|b$".
	re, err := regexp.Compile(`^(?:` + r.Expr + `)$`)
	if err != nil {
		return fmt.Errorf("%w: user route %q: %w", ErrBadRoute, r.Expr, err)
	}
	if re.MatchString("") {
		// A pattern matching the empty user would also take requests
		// addressed to the proxy itself (OPTIONS sip:domain).
		return fmt.Errorf("%w: user route %q matches an empty user", ErrBadRoute, r.Expr)
	}
	r.re = re
	r.NextHop = netip.AddrPortFrom(r.NextHop.Addr().Unmap(), r.NextHop.Port())
	return nil
}

// validateUserRoutes compiles every route once, at New; duplicates are
// refused because the first would silently shadow the second.
func validateUserRoutes(routes []UserRoute) ([]UserRoute, error) {
	out := make([]UserRoute, 0, len(routes))
	seen := map[string]bool{}
	for _, r := range routes {
		if err := r.compile(); err != nil {
			return nil, err
		}
		if seen[r.Expr] {
			return nil, fmt.Errorf("%w: user route %q listed twice", ErrBadRoute, r.Expr)
		}
		seen[r.Expr] = true
		out = append(out, r)
	}
	return out, nil
}

// userRoute finds the first user route matching a Request-URI of our
// domain (the caller checked the domain).
func (p *Proxy) userRoute(u sip.Uri) (target, bool) {
	if u.User == "" {
		return target{}, false
	}
	for _, r := range p.cfg.UserRoutes {
		if r.Match(u.User) {
			return target{dest: r.NextHop, transport: sipnet.UDP, why: "user route " + r.Expr}, true
		}
	}
	return target{}, false
}
