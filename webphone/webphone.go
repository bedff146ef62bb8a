// Package webphone is the lab's browser phone: a page (plain HTML and JS,
// embedded) with a minimal SIP-over-WebSocket client (RFC 7118: REGISTER
// with digest, INVITE with the RTCPeerConnection's offer, ACK, BYE, DTMF
// as RFC 4733 telephone-event) and a live view of its ICE candidates and
// the selected pair from getStats. It is served by the SBC on its WSS port
// (same origin as the SIP WebSocket) at /phone.
package webphone

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Config is what the page is told at load time (/phone/config.json).
type Config struct {
	// Domain is the SIP domain users register in (siplab.test).
	Domain string `json:"domain"`
	// ICEServers are the lab's stun:/turn: URLs for the browser (never a
	// public server); TURN credentials are the user's own SIP password,
	// which the page fills in.
	ICEServers []string `json:"ice_servers"`
	// ICETransportPolicy "relay" makes the browser use TURN candidates
	// only (an exercise); empty = all.
	ICETransportPolicy string `json:"ice_transport_policy,omitempty"`
	// ICEServersNow, if set, replaces ICEServers at every page load: the
	// SBC's live setting webrtc_ice_servers, so `siplab set sbc
	// webrtc_ice_servers ...` reaches the next browser that opens the page.
	ICEServersNow func() []string `json:"-"`
}

// Handler serves the page at /phone (and /phone/...) with cfg.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Domain == "" {
		return nil, fmt.Errorf("webphone: a SIP domain is required")
	}
	for _, u := range cfg.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") {
			return nil, fmt.Errorf("webphone: ICE server %q: want stun: or turn:", u)
		}
	}
	if p := cfg.ICETransportPolicy; p != "" && p != "all" && p != "relay" {
		return nil, fmt.Errorf("webphone: ICE transport policy %q: want all or relay", p)
	}
	if _, err := pageConfig(cfg); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /phone", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/phone/", http.StatusFound)
	})
	mux.HandleFunc("GET /phone/config.json", func(w http.ResponseWriter, _ *http.Request) {
		conf, err := pageConfig(cfg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(conf)
	})
	mux.Handle("GET /phone/", http.StripPrefix("/phone", noCache(files)))
	return mux, nil
}

// pageConfig is config.json: cfg with the ICE servers of the moment.
func pageConfig(cfg Config) ([]byte, error) {
	if cfg.ICEServersNow != nil {
		cfg.ICEServers = cfg.ICEServersNow()
	}
	if cfg.ICEServers == nil {
		cfg.ICEServers = []string{}
	}
	return json.Marshal(cfg)
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
