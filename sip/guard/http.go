package guard

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/siplab/siplab/internal/ctl"
)

// UnblockHandler serves a daemon's POST unblock: a ctl.UnblockRequest
// naming one source IP in, a ctl.UnblockResult out. unblock lifts the
// block (the daemon's Unblock, which may hold more than one guard); daemon
// names the daemon in the error a bad address gets.
func UnblockHandler(daemon string, unblock func(netip.Addr) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in ctl.UnblockRequest
		if err := ctl.Decode(r, &in); err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		ip, err := netip.ParseAddr(strings.TrimSpace(in.Source))
		if err != nil {
			ctl.WriteError(w, http.StatusBadRequest, fmt.Errorf("%s: unblock: %q is not an IP address", daemon, in.Source))
			return
		}
		ctl.WriteJSON(w, http.StatusOK, ctl.UnblockResult{Source: ip.String(), Unblocked: unblock(ip)})
	}
}
