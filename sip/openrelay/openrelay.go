// Package openrelay is what the proxy and the SBC say when they refuse to
// be an open relay: a stranger's request preloading a Route elsewhere
// gets 403 with the refused hop in the reason phrase, worded the same by
// both, so a scanner log or a trace reads alike whichever element answered.
package openrelay

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// Where is a URI's host and port as a reason phrase shows them: the host
// as written (a name is never resolved), the port only when the URI has one.
func Where(u sip.Uri) string {
	h := u.Host
	if h == "" {
		h = "(no host)"
	}
	if u.Port != 0 {
		return h + ":" + strconv.Itoa(u.Port)
	}
	return h
}

// RouteDenied is the 403 reason phrase for a preloaded Route to where.
func RouteDenied(where string) string {
	return "Relaying Denied: Route to " + where + " not allowed"
}
