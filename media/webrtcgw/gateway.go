package webrtcgw

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Gateway makes calls; it holds the ICE configuration they share.
type Gateway struct {
	cfg Config
	log *slog.Logger
	mux *ice.UDPMuxDefault // nil without Config.ICEConn

	mu     sync.Mutex
	calls  map[string]*Call
	nextID int
}

// New validates cfg.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.validate(); err != nil {
		if cfg.ICEConn != nil {
			cfg.ICEConn.Close()
		}
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger.With("component", "webrtcgw"), calls: map[string]*Call{}}
	if cfg.ICEConn != nil {
		g.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: cfg.ICEConn})
	}
	return g, nil
}

// Close ends every call and releases the shared ICE socket.
func (g *Gateway) Close() error {
	g.mu.Lock()
	calls := make([]*Call, 0, len(g.calls))
	for _, c := range g.calls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	for _, c := range calls {
		c.Close()
	}
	if g.mux != nil {
		return g.mux.Close()
	}
	return nil
}

// CallConfig is one call's core side.
type CallConfig struct {
	// Core is the plain RTP socket toward the core; the call owns it and
	// closes it. Required.
	Core net.PacketConn
	// CoreIP is the address written in the core-side SDP; default the
	// socket's own address (which must then be specific).
	CoreIP netip.Addr
	// Name labels the call in logs and Calls (a SIP Call-ID, say); empty =
	// a sequence number.
	Name string
}

// NewCall makes a call with no PeerConnection yet: the first negotiation
// step (OfferFromBrowser or OfferFromCore) picks the codec and makes it.
func (g *Gateway) NewCall(cc CallConfig) (*Call, error) {
	if cc.Core == nil {
		return nil, fmt.Errorf("%w: a core RTP socket is required", ErrConfig)
	}
	la, ok := cc.Core.LocalAddr().(*net.UDPAddr)
	if !ok {
		cc.Core.Close()
		return nil, fmt.Errorf("%w: core socket %v is not UDP", ErrConfig, cc.Core.LocalAddr())
	}
	if !cc.CoreIP.IsValid() {
		ip, _ := netip.AddrFromSlice(la.IP)
		cc.CoreIP = ip.Unmap()
	}
	if !cc.CoreIP.IsValid() || cc.CoreIP.IsUnspecified() {
		cc.Core.Close()
		return nil, fmt.Errorf("%w: core SDP address %v: bind a specific IP or set CoreIP", ErrConfig, cc.CoreIP)
	}
	g.mu.Lock()
	g.nextID++
	if cc.Name == "" {
		cc.Name = fmt.Sprintf("webrtc-%d", g.nextID)
	}
	c := newCall(g, cc, la.AddrPort())
	g.calls[cc.Name] = c
	g.mu.Unlock()
	c.wg.Add(1)
	go c.coreReadLoop()
	return c, nil
}

// Calls are the live calls' statistics.
func (g *Gateway) Calls() []Stats {
	g.mu.Lock()
	calls := make([]*Call, 0, len(g.calls))
	for _, c := range g.calls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	out := make([]Stats, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.Stats())
	}
	return out
}

func (g *Gateway) forget(c *Call) {
	g.mu.Lock()
	if g.calls[c.name] == c {
		delete(g.calls, c.name)
	}
	g.mu.Unlock()
}

// api is a pion API for one call: exactly the chosen codec (plus
// telephone-event), the gateway's ICE settings, no interceptors (the
// gateway relays packets, it does not play or record them).
func (g *Gateway) api(codec webrtc.RTPCodecParameters, dtmfPT uint8) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(codec, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtcgw: register %s: %w", codec.MimeType, err)
	}
	if dtmfPT != 0 {
		te := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 8000, SDPFmtpLine: "0-16"},
			PayloadType:        webrtc.PayloadType(dtmfPT),
		}
		if err := m.RegisterCodec(te, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("webrtcgw: register telephone-event: %w", err)
		}
	}
	var se webrtc.SettingEngine
	se.SetLite(g.cfg.Lite)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(g.cfg.keepIP)
	se.SetIncludeLoopbackCandidate(g.cfg.wantsLoopback())
	if g.mux != nil {
		se.SetICEUDPMux(g.mux)
	}
	if g.cfg.PortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(g.cfg.PortMin, g.cfg.PortMax); err != nil {
			return nil, fmt.Errorf("%w: ICE ports: %w", ErrConfig, err)
		}
	}
	if g.cfg.AdvertiseIP.IsValid() {
		se.SetNAT1To1IPs([]string{g.cfg.AdvertiseIP.String()}, webrtc.ICECandidateTypeHost)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)), nil
}

func (g *Gateway) iceServers() []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, u := range g.cfg.ICEServers {
		s := webrtc.ICEServer{URLs: []string{u}}
		if len(u) > 5 && u[:5] == "turn:" {
			s.Username, s.Credential = g.cfg.TURNUser, g.cfg.TURNPassword
		}
		out = append(out, s)
	}
	return out
}
