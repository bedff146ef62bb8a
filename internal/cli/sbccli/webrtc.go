package sbccli

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/webphone"
)

// webFlags are the browser phone's flags: SIP over secure WebSocket, the
// phone page on the same port and the WebRTC media gateway. All off
// without -wss.
type webFlags struct {
	wss, ice, iceServers, domain, policy, mode string
}

func addWebFlags(fs *flag.FlagSet) *webFlags {
	w := &webFlags{}
	fs.StringVar(&w.wss, "wss", "", "SIP over secure WebSocket (RFC 7118) and the browser phone page (https://<wss>/phone) on ip:port (same IP as -sip, certificate from -tls-dir); empty: off")
	fs.StringVar(&w.ice, "webrtc-ice", "", "UDP ip:port every browser call's ICE/DTLS/SRTP shares (the gateway's host candidate); default the -wss address on UDP")
	fs.StringVar(&w.iceServers, "webrtc-ice-servers", "", "comma-separated stun:/turn: URLs the browser is given (the lab's own STUN/TURN only); empty: host candidates only")
	fs.StringVar(&w.domain, "webrtc-domain", "siplab.test", "SIP domain the browser phone registers in")
	fs.StringVar(&w.policy, "webrtc-ice-policy", "all", "the browser's ICE transport policy: all, or relay (TURN candidates only)")
	fs.StringVar(&w.mode, "webrtc-ice-mode", "lite", "the gateway's ICE agent: lite (answers the browser's checks on its public address, what SBCs do) or full (sends checks of its own too)")
	return w
}

// serve adds the WebSocket listener, page and gateway to b (before Start).
func (w *webFlags) serve(b *sbc.SBC, sipAddr string, tlsConf func() (*tls.Config, error), log *slog.Logger) error {
	if w.wss == "" {
		return nil
	}
	wssAP, err := netip.ParseAddrPort(w.wss)
	if err != nil {
		return fmt.Errorf("%w: -wss %q: %w", errUsage, w.wss, err)
	}
	sipAP, err := netip.ParseAddrPort(sipAddr)
	if err != nil || sipAP.Addr() != wssAP.Addr() {
		return fmt.Errorf("%w: -wss %s must use the -sip IP %s", errUsage, w.wss, sipAddr)
	}
	// The STUN/TURN URLs are the SBC's live setting webrtc_ice_servers
	// (its startup value is -webrtc-ice-servers): each page load reads it.
	page, err := webphone.Handler(webphone.Config{Domain: w.domain, ICETransportPolicy: w.policy,
		Live: func() (webphone.Live, error) { return webphone.Live{ICEServers: b.Settings().ICEServers()}, nil }})
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if w.mode != "lite" && w.mode != "full" {
		return fmt.Errorf("%w: -webrtc-ice-mode %q: want lite or full", errUsage, w.mode)
	}
	ice := w.ice
	if ice == "" {
		ice = w.wss
	}
	iceConn, err := net.ListenPacket("udp4", ice)
	if err != nil {
		return fmt.Errorf("sbc: webrtc ICE socket: %w", err)
	}
	gw, err := webrtcgw.New(webrtcgw.Config{ICEConn: iceConn, IPs: []netip.Addr{wssAP.Addr()}, Lite: w.mode == "lite", Logger: log})
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg, err := tlsConf()
	if err != nil {
		gw.Close()
		return err
	}
	ln, err := tls.Listen("tcp", w.wss, cfg)
	if err != nil {
		gw.Close()
		return fmt.Errorf("sbc: wss listener: %w", err)
	}
	if err := b.ServeWebSocket(ln, page, gw); err != nil {
		gw.Close()
		return err
	}
	log.Info("browser phone", "page", "https://"+ln.Addr().String()+"/phone", "ice", iceConn.LocalAddr())
	return nil
}
