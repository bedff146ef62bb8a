package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/siplab/siplab/internal/ctl"
)

// DefaultSocket is where the daemon serves its control API (package ctl):
// inside its container, reachable by `docker exec`, never from a lab
// network.
const DefaultSocket = "/run/siplab/proxy.sock"

// Handler is the proxy's control API in the ctl wire format, the same
// dialect as every other daemon's:
//
//	GET  /status    Status
//	GET  /settings  Settings
//	POST /set       ctl.SetRequest → Settings, or GuardSettings for a guard setting
//	                (GuardSettingNames); "default" is the startup value
//	POST /unblock   ctl.UnblockRequest → ctl.UnblockResult
//	POST /reset     every toggle back to its startup value → ResetResult
//
// Errors are {"error": "..."} with 400 for a bad value and 404 for an
// unknown setting.
func (p *Proxy) Handler() http.Handler {
	// Reset takes no context: it only restores settings and lifts blocks.
	mux := ctl.NewMux(p.Status, p.Settings, func(context.Context) ResetResult { return p.Reset() })
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		var in ctl.SetRequest
		if err := ctl.Decode(r, &in); err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		var s any
		var err error
		if IsGuardSetting(in.Name) {
			s, err = p.SetGuard(in.Name, in.Value)
		} else {
			s, err = p.Set(in.Name, in.Value)
		}
		switch {
		case errors.Is(err, ErrUnknownSetting):
			ctl.WriteError(w, http.StatusNotFound, err)
		case err != nil:
			ctl.WriteError(w, http.StatusBadRequest, err)
		default:
			ctl.WriteJSON(w, http.StatusOK, s)
		}
	})
	mux.HandleFunc("POST /unblock", func(w http.ResponseWriter, r *http.Request) {
		var in ctl.UnblockRequest
		if err := ctl.Decode(r, &in); err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		ip, err := netip.ParseAddr(in.Source)
		if err != nil {
			ctl.WriteError(w, http.StatusBadRequest, fmt.Errorf("proxy: unblock: %q is not an IP address", in.Source))
			return
		}
		ctl.WriteJSON(w, http.StatusOK, ctl.UnblockResult{Source: ip.String(), Unblocked: p.Unblock(ip)})
	})
	return mux
}

// ResetResult answers POST /reset.
type ResetResult struct {
	Settings Settings `json:"settings"`
	// Restored names the toggles (guard settings included) that were not
	// at their startup value.
	Restored []string `json:"restored"`
	// Unblocked lists the sources whose failed-auth block was lifted.
	Unblocked []string `json:"unblocked,omitempty"`
}
