// Package webphone is the lab's browser phone: a page (plain HTML and JS,
// embedded) with a minimal SIP-over-WebSocket client (RFC 7118: REGISTER
// with digest, INVITE with the RTCPeerConnection's offer, ACK, BYE, DTMF
// as RFC 4733 telephone-event) and a live view of its ICE candidates and
// the selected pair from getStats. It is served by the SBC on its WSS port
// (same origin as the SIP WebSocket) at /phone, and by the classroom
// console (lab/console) on its own port, where the page opens its SIP
// WebSocket across origins to the SBC (Live.WSURL).
package webphone

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
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
	// WSURL is the SIP WebSocket the page opens (wss://host:port/); empty:
	// the page's own origin (the SBC serving its own page).
	WSURL string `json:"ws_url,omitempty"`
	// Live, if set, is read at every page load for what may change while
	// the page server runs: the SBC's live setting webrtc_ice_servers (so
	// `siplab set sbc webrtc_ice_servers ...` reaches the next browser that
	// opens the page), and for the console the SBC's WSS address. Its error
	// is shown by the page (config.json answers 503).
	Live func() (Live, error) `json:"-"`
}

// Live is the part of Config read at every page load.
type Live struct {
	// ICEServers replaces Config.ICEServers.
	ICEServers []string
	// WSURL, if not empty, replaces Config.WSURL.
	WSURL string
	// ICETransportPolicy, if not empty, replaces Config.ICETransportPolicy
	// (the SBC's -webrtc-ice-policy, for the console's page).
	ICETransportPolicy string
}

// Handler serves the page at /phone (and /phone/...) with cfg.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Domain == "" {
		return nil, fmt.Errorf("webphone: a SIP domain is required")
	}
	if err := check(cfg); err != nil {
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
			// The page shows this text: the lab is down, the SBC has no
			// WSS listener, a bad live setting.
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(conf)
	})
	mux.Handle("GET /phone/", http.StripPrefix("/phone", noCache(files)))
	return mux, nil
}

// check validates what the page is given: URLs it would otherwise fail on
// late, in the browser, with a vaguer error.
func check(cfg Config) error {
	for _, u := range cfg.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") {
			return fmt.Errorf("webphone: ICE server %q: want stun: or turn:", u)
		}
	}
	if cfg.WSURL != "" {
		u, err := url.Parse(cfg.WSURL)
		if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
			return fmt.Errorf("webphone: SIP WebSocket URL %q: want wss://host:port/", cfg.WSURL)
		}
	}
	if p := cfg.ICETransportPolicy; p != "" && p != "all" && p != "relay" {
		return fmt.Errorf("webphone: ICE transport policy %q: want all or relay", p)
	}
	return nil
}

// pageConfig is config.json: cfg with the live part of the moment.
func pageConfig(cfg Config) ([]byte, error) {
	if cfg.Live != nil {
		l, err := cfg.Live()
		if err != nil {
			return nil, err
		}
		cfg.ICEServers = l.ICEServers
		if l.WSURL != "" {
			cfg.WSURL = l.WSURL
		}
		if l.ICETransportPolicy != "" {
			cfg.ICETransportPolicy = l.ICETransportPolicy
		}
		if err := check(cfg); err != nil {
			return nil, err
		}
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
