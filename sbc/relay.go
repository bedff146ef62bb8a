package sbc

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/openrelay"
	"github.com/siplab/siplab/sip/sipdialog"
)

// foreignRoute finds the first Route entry of an initial request that
// does not name the SBC. The SBC never follows a Route (it is a B2BUA:
// the access side goes to the next hop, the core side to a registered
// phone or the trunk), but a Route pointing elsewhere is a request to be
// relayed there: it is refused in the open (403) rather than stripped,
// so a scanner probing for an open relay, and an intern reading the
// trace, both see the answer. In-dialog requests are not checked: their
// route set is the dialog's (RFC 3261 §12.2.1.1).
func (s *SBC) foreignRoute(req *sip.Request) (string, bool) {
	if sipdialog.ToTag(req) != "" && req.Method != sip.REGISTER {
		return "", false
	}
	for _, h := range req.GetHeaders("Route") {
		r, ok := h.(*sip.RouteHeader)
		if !ok {
			continue
		}
		if !s.isOwnRoute(r.Address) {
			return openrelay.Where(r.Address), true
		}
	}
	return "", false
}

// isOwnRoute says whether a Route URI names one of the SBC's sockets (on
// either realm, plain or TLS), the way a phone with the SBC as outbound
// proxy preloads it.
func (s *SBC) isOwnRoute(u sip.Uri) bool {
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	port := u.Port
	for _, ep := range s.ep {
		for _, a := range []netip.AddrPort{ep.Addr(), ep.TLSAddr()} {
			if !a.IsValid() || a.Addr().Unmap() != ip {
				continue
			}
			if port == 0 || port == int(a.Port()) {
				return true
			}
		}
	}
	return false
}
