package sbc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sip/sipnet"
)

// wssServer is the access side's SIP over secure WebSocket (RFC 7118) and
// the HTTPS page server sharing its port: a browser loads the phone page
// from the same origin it opens its SIP WebSocket to, so one certificate
// exception (or the lab CA, trusted once) covers both.
type wssServer struct {
	ln   net.Listener
	addr netip.AddrPort
	http *http.Server
	gw   *webrtcgw.Gateway // nil without a media gateway (webrtc.go)
}

// ServeWebSocket adds SIP over WebSocket to the access side on ln, a TLS
// listener on the access IP (labtls certificate), and serves web (the
// browser phone page, nil for none) over HTTPS on the same port. gw is the
// WebRTC media gateway for browsers' calls (webrtc.go); nil refuses
// WebRTC offers with 488. Call it before Start; the SBC closes ln on Close.
//
// Phones on WebSocket are handled like phones on TCP or TLS: a REGISTER
// is cached with its connection (source ip:port, transport wss), so
// requests to the phone go back over the connection it opened, whatever
// its Contact says — RFC 7118 phones write an unroutable "….invalid" host
// there, and a browser cannot accept a connection anyway. The .invalid
// Via makes it count as NATed: short expiry and OPTIONS pings, which also
// keep the WebSocket busy through idle timeouts.
func (s *SBC) ServeWebSocket(ln net.Listener, web http.Handler, gw *webrtcgw.Gateway) error {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		ln.Close()
		return fmt.Errorf("%w: websocket listener %v is not TCP", ErrConfig, ln.Addr())
	}
	addr := netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port())
	if addr.Addr() != s.ep[access].Addr().Addr() {
		ln.Close()
		return fmt.Errorf("%w: websocket listener %v must use the access IP %v", ErrConfig, addr, s.ep[access].Addr().Addr())
	}
	if web == nil {
		web = http.NotFoundHandler()
	}
	sipLn, webLn := sipnet.SplitWebSocket(ln)
	if err := s.ep[access].ServeWSS(sipLn); err != nil {
		ln.Close()
		return err
	}
	w := &wssServer{ln: ln, addr: addr, gw: gw, http: &http.Server{Handler: web, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := w.http.Serve(webLn); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("https page server stopped", "err", err)
		}
	}()
	s.wss.Store(w)
	s.log.Info("sip over websocket", "wss", addr)
	return nil
}

// AccessWSSAddr is the WebSocket listener (zero without one).
func (s *SBC) AccessWSSAddr() netip.AddrPort {
	w := s.wss.Load()
	if w == nil {
		return netip.AddrPort{}
	}
	return w.addr
}

func (s *SBC) closeWSS() {
	if w := s.wss.Load(); w != nil {
		w.http.Close()
		w.ln.Close()
	}
}

// isWS says whether a transport name is SIP over WebSocket.
func isWS(transport string) bool { return transport == "ws" || transport == sipnet.WSS }

// webStatus adds the WebSocket listener and the gateway's calls.
func (s *SBC) webStatus(st *Status) {
	if a := s.AccessWSSAddr(); a.IsValid() {
		st.AccessWSS = a.String()
		st.WebRTC = s.WebRTCCalls()
		st.WebRTCICEPolicy = s.cfg.WebRTCICEPolicy
	}
}

// writeWebText prints them: per browser call the ICE state, the selected
// pair and what each direction carries (who hears whom).
func writeWebText(w io.Writer, st Status) {
	if st.AccessWSS == "" {
		return
	}
	fmt.Fprintf(w, "  wss %s, browser phone https://%s/phone/ (ICE policy %s)\n", st.AccessWSS, st.AccessWSS, st.WebRTCICEPolicy)
	for _, c := range st.WebRTC {
		fmt.Fprintf(w, "  webrtc %s: ice %s, dtls %s, pair %s, %s; browser->core %d pkts %.0f Hz, core->browser %d pkts %.0f Hz; browser %s, core %s, %d re-offers\n",
			c.Name, c.ICE, c.Peer, orNone(c.SelectedPair), orNone(c.Codec), c.ToCore.Packets, c.ToCore.ToneHz, c.ToBrowser.Packets, c.ToBrowser.ToneHz,
			c.BrowserDirection, c.CoreDirection, c.Renegotiations)
	}
}
