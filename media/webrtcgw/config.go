// Package webrtcgw is the lab's WebRTC media gateway: one pion/webrtc
// PeerConnection per call toward a browser (ICE, DTLS-SRTP, G.711) bridged
// to a plain G.711 RTP socket toward the core (proxy, PBX, desk phones).
//
// ICE: the gateway is a full ICE agent unless Config.Lite. Full ICE sends
// checks of its own (captures show checks both ways; it can sit behind a
// NAT and use the lab's STUN/TURN server). ICE-lite (RFC 8445 §2.5) only
// answers the browser's checks on its host candidate, which is what an
// SBC with a public address does, and what the SBC uses by default: on
// loopback with headless Chromium, full ICE left about half of the calls
// in "checking" (pion's early checks reach the browser before the SIP
// answer gives it our credentials; not root-caused), ICE-lite never did.
//
// No trickle ICE: SIP carries one offer and one answer, so every SDP the
// gateway writes waits for candidate gathering to finish, and the browser
// page does the same.
package webrtcgw

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Errors callers map to SIP responses.
var (
	// ErrConfig wraps every configuration error.
	ErrConfig = errors.New("webrtcgw: invalid config")
	// ErrNoCommonCodec: the offer has neither PCMU nor PCMA (SIP 488).
	ErrNoCommonCodec = errors.New("webrtcgw: no common codec (PCMU/PCMA)")
	// ErrBadSDP: an SDP body could not be used (SIP 488 or 400).
	ErrBadSDP = errors.New("webrtcgw: unusable SDP")
	// ErrState: a negotiation step came out of order.
	ErrState = errors.New("webrtcgw: negotiation out of order")
)

// DefaultGatherTimeout bounds candidate gathering (a TURN server that does
// not answer must not hold a call for ever).
const DefaultGatherTimeout = 5 * time.Second

// Config is the gateway's ICE side, shared by every call.
type Config struct {
	// ICEServers are stun: and turn: URLs (RFC 7064/7065), the lab's own
	// STUN/TURN server (stunturn/) only, never a public one. Empty: host
	// candidates only, enough when the gateway has a public address.
	ICEServers []string
	// TURNUser and TURNPassword are the long-term credentials for turn:
	// URLs (the lab's users file: a SIP account).
	TURNUser, TURNPassword string
	// Lite makes the gateway an ICE-lite agent: host candidates only, no
	// checks of its own (ICEServers must then be empty).
	Lite bool
	// IPs restricts host candidates to these addresses (the SBC's access
	// address); empty = every address of the host. A loopback address here
	// turns loopback candidates on (tests).
	IPs []netip.Addr
	// AdvertiseIP, if set, replaces the host candidates' address (1:1
	// NAT, a gateway behind a static mapping).
	AdvertiseIP netip.Addr
	// ICEConn, if set, is the one UDP socket every call's ICE, DTLS and
	// SRTP share (pion's UDP mux, calls told apart by ICE username): one
	// port to open and to capture, and host candidates with exactly its
	// address, which need not be an interface's primary address (a
	// 127.0.45.x loopback alias in tests). The gateway owns it. Without
	// it each call gathers on ephemeral ports of the host's addresses.
	ICEConn net.PacketConn
	// PortMin and PortMax bound the ICE UDP ports (both 0 = any); not
	// with ICEConn.
	PortMin, PortMax uint16
	// GatherTimeout bounds gathering; 0 = DefaultGatherTimeout.
	GatherTimeout time.Duration
	Logger        *slog.Logger
}

func (c *Config) validate() error {
	for _, u := range c.ICEServers {
		scheme, rest, ok := strings.Cut(u, ":")
		if !ok || rest == "" {
			return fmt.Errorf("%w: ICE server %q: want stun:host:port or turn:host:port", ErrConfig, u)
		}
		switch scheme {
		case "stun":
		case "turn":
			if c.TURNUser == "" || c.TURNPassword == "" {
				return fmt.Errorf("%w: ICE server %q needs a TURN user and password", ErrConfig, u)
			}
		default:
			return fmt.Errorf("%w: ICE server %q: scheme %q (want stun or turn; turns/tcp are not offered)", ErrConfig, u, scheme)
		}
	}
	if c.Lite && len(c.ICEServers) > 0 {
		return fmt.Errorf("%w: an ICE-lite agent gathers host candidates only: drop the ICE servers or Lite", ErrConfig)
	}
	if c.ICEConn != nil && c.PortMin != 0 {
		return fmt.Errorf("%w: a port range with a shared ICE socket", ErrConfig)
	}
	if c.ICEConn != nil {
		ua, ok := c.ICEConn.LocalAddr().(*net.UDPAddr)
		if !ok || ua.IP.IsUnspecified() {
			return fmt.Errorf("%w: ICE socket %v: bind a specific UDP address (it is the host candidate)", ErrConfig, c.ICEConn.LocalAddr())
		}
	}
	if (c.PortMin == 0) != (c.PortMax == 0) || c.PortMin > c.PortMax {
		return fmt.Errorf("%w: ICE port range %d-%d", ErrConfig, c.PortMin, c.PortMax)
	}
	for _, ip := range c.IPs {
		if !ip.IsValid() || ip.IsUnspecified() {
			return fmt.Errorf("%w: host candidate address %v: name a specific IP", ErrConfig, ip)
		}
	}
	if c.AdvertiseIP.IsValid() && c.AdvertiseIP.IsUnspecified() {
		return fmt.Errorf("%w: advertised address %v: name a specific IP", ErrConfig, c.AdvertiseIP)
	}
	if c.GatherTimeout < 0 {
		return fmt.Errorf("%w: gather timeout %v", ErrConfig, c.GatherTimeout)
	}
	if c.GatherTimeout == 0 {
		c.GatherTimeout = DefaultGatherTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// keepIP is the host-candidate filter for Config.IPs.
func (c *Config) keepIP(ip net.IP) bool {
	if len(c.IPs) == 0 {
		return true
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	for _, want := range c.IPs {
		if want.Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

func (c *Config) wantsLoopback() bool {
	for _, ip := range c.IPs {
		if ip.IsLoopback() {
			return true
		}
	}
	return false
}
