package b2bua

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// The PBX decides where its calls go from its dial plan alone: a new
// call's other leg goes to a registered user through the proxy or to a
// configured trunk, never where the caller's headers point. Two requests
// would still make it send elsewhere, and both are refused here:
//
//   - an initial request preloading a Route that does not name the PBX
//     asks to be relayed there (the open-relay probe of issue 14); the
//     PBX does not follow it, and says so with 403 instead of silently
//     answering as if the Route were not there;
//   - a call to a trunk number from someone who is not one of the
//     platform's users (From not at Domain, the identity the proxy
//     authenticates) would be a stranger calling the PSTN at the
//     platform's expense: toll fraud through the PBX.

// foreignRoute is the first Route entry of an initial request that does
// not name the PBX. In-dialog requests follow their dialog's route set
// (RFC 3261 §12.2.1.1) and are not checked.
func (b *B2BUA) foreignRoute(req *sip.Request) (string, bool) {
	if sipdialog.ToTag(req) != "" {
		return "", false
	}
	own := b.ep.Addr()
	for _, h := range req.GetHeaders("Route") {
		r, ok := h.(*sip.RouteHeader)
		if !ok {
			continue
		}
		u := r.Address
		ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
		port := u.Port
		if port == 0 {
			port = 5060
		}
		if err == nil && ip.Unmap() == own.Addr().Unmap() && port == int(own.Port()) {
			continue
		}
		where := u.Host
		if u.Port != 0 {
			where += ":" + strconv.Itoa(u.Port)
		}
		return where, true
	}
	return "", false
}

// platformCaller says whether the caller is one of the platform's users:
// From at our Domain, which the proxy challenges (407) before anything
// reaches the PBX.
func (b *B2BUA) platformCaller(req *sip.Request) bool {
	f := req.From()
	return f != nil && strings.EqualFold(strings.Trim(f.Address.Host, "[]"), b.cfg.Domain)
}
