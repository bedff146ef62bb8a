package uaclient

// STUN and TURN for the phone's media (training page module 08): with
// sdp_addr=stun the phone asks the STUN server, from the call's RTP socket,
// which public address its NAT gave that socket and writes it into the SDP;
// with media_relay=turn it allocates a relay on the TURN server over the
// RTP socket and sends and receives all media through it, advertising the
// relayed address. Both run once per call, when the RTP socket is bound,
// before the first SDP is written: the answer to a STUN request arrives on
// the same socket the media session will read.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/siplab/siplab/stunturn"
)

// Media relay modes.
const (
	MediaRelayOff  = "off"
	MediaRelayTURN = "turn"
)

// natSettings are the STUN/TURN live settings, embedded in liveSettings.
// The zero value is off: no server is ever contacted unless one is set,
// and there is no public default.
type natSettings struct {
	// STUNServer answers Binding requests; invalid = none.
	STUNServer netip.AddrPort
	// SDPStun: sdp_addr=stun, write the STUN-mapped RTP address in SDP.
	SDPStun bool
	// MediaRelay is "off" ("" = off) or "turn".
	MediaRelay string
	// TURNServer; invalid = STUNServer (one lab server does both).
	TURNServer netip.AddrPort
	// TURNUser / TURNPassword; empty = the phone's SIP user and password.
	TURNUser     string
	TURNPassword string
}

func init() {
	// The STUN/TURN rows live here with their code; they follow the
	// other settings in help and status.
	settingsTable = append(settingsTable, natSettingsTable...)
}

var natSettingsTable = []setting{
	serverSetting("stun_server",
		"STUN server ip:port asked \"what is my public address?\" for sdp_addr=stun ('none' = no server). The lab's: 203.0.113.20:3478.",
		func(s *liveSettings) *netip.AddrPort { return &s.STUNServer }),
	{
		Name: "media_relay",
		Help: "off | turn: with turn each call allocates a relay on turn_server (RFC 5766) and sends/receives RTP through it, its SDP carrying the relayed address. Costs a server hop; works through any NAT. Applies to the next call.",
		get: func(s *liveSettings) string {
			if s.MediaRelay == "" {
				return MediaRelayOff
			}
			return s.MediaRelay
		},
		set: setOneOf("media_relay", func(s *liveSettings) *string { return &s.MediaRelay }, MediaRelayOff, MediaRelayTURN),
	},
	serverSetting("turn_server",
		"TURN server ip:port for media_relay=turn ('none' = use stun_server).",
		func(s *liveSettings) *netip.AddrPort { return &s.TURNServer }),
	{
		Name: "turn_user",
		Help: "TURN username ('default' = the phone's SIP user). A wrong one: the allocation fails with 401 and the call falls back to direct media.",
		get: func(s *liveSettings) string {
			if s.TURNUser == "" {
				return "default"
			}
			return s.TURNUser
		},
		set: func(s *liveSettings, v string) error {
			v = strings.TrimSpace(v)
			if strings.EqualFold(v, "default") {
				v = ""
			}
			if strings.ContainsAny(v, " \t\r\n") {
				return fmt.Errorf("%w: turn_user %q contains spaces", ErrBadValue, v)
			}
			s.TURNUser = v
			return nil
		},
	},
	{
		Name: "turn_password",
		Help: "TURN password (never shown; 'default' = the phone's SIP password).",
		get: func(s *liveSettings) string {
			if s.TURNPassword == "" {
				return "default"
			}
			return "(set)"
		},
		set: func(s *liveSettings, v string) error {
			if strings.EqualFold(strings.TrimSpace(v), "default") {
				v = ""
			}
			s.TURNPassword = v
			return nil
		},
	},
}

// serverSetting is a row for a STUN or TURN server's address; field is
// where the setting keeps it.
func serverSetting(name, help string, field func(*liveSettings) *netip.AddrPort) setting {
	return setting{
		Name: name,
		Help: help,
		get:  func(s *liveSettings) string { return serverString(*field(s)) },
		set: func(s *liveSettings, v string) (err error) {
			*field(s), err = parseServerSetting(name, v)
			return err
		},
	}
}

func serverString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "none"
	}
	return ap.String()
}

// parseServerSetting takes ip:port (3478 when only an ip is given) or
// none. Names are refused: the lab resolves nothing (sipnet's noDNS).
func parseServerSetting(name, v string) (netip.AddrPort, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "none", "off":
		return netip.AddrPort{}, nil
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %s %q: want ip:port (or none)", ErrBadValue, name, v)
		}
		ap = netip.AddrPortFrom(a, 3478)
	}
	if ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%w: %s %q: want a real ip:port", ErrBadValue, name, v)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// setSDPAddr parses sdp_addr: "stun" or what parseAddrSetting takes.
func setSDPAddr(s *liveSettings, v string) (err error) {
	if strings.EqualFold(strings.TrimSpace(v), "stun") {
		s.SDPStun, s.SDPAddr, s.SDPIP = true, netip.AddrPort{}, netip.Addr{}
		return nil
	}
	s.SDPAddr, s.SDPIP, err = parseAddrSetting(v)
	if err == nil {
		s.SDPStun = false
	}
	return err
}

func sdpAddrString(s *liveSettings) string {
	if s.SDPStun {
		return "stun"
	}
	return addrString(s.SDPAddr, s.SDPIP)
}

func (s *liveSettings) turnServer() netip.AddrPort {
	if s.TURNServer.IsValid() {
		return s.TURNServer
	}
	return s.STUNServer
}

// CallNATStatus is what STUN/TURN did for a call's media, for status.
type CallNATStatus struct {
	// STUN: the Binding request sent from Socket to Server, and the
	// Mapped address it answered At — the address the SDP then carries.
	STUNServer string    `json:"stun_server,omitempty"`
	Socket     string    `json:"socket,omitempty"`
	Mapped     string    `json:"mapped,omitempty"`
	At         time.Time `json:"at,omitzero"`
	STUNError  string    `json:"stun_error,omitempty"`
	// TURN: the allocation made from Socket on TURNServer: its relayed
	// address (in the SDP) and the peers permitted.
	TURNServer  string   `json:"turn_server,omitempty"`
	TURNUser    string   `json:"turn_user,omitempty"`
	Relayed     string   `json:"relayed,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	TURNError   string   `json:"turn_error,omitempty"`
}

// callNAT is a call's STUN/TURN state; guarded by the phone's mutex.
type callNAT struct {
	mapped netip.AddrPort   // STUN answer for the RTP socket
	relay  *stunturn.Relay  // live TURN allocation, owned by the call
	st     *CallNATStatus   // nil when neither was asked for
	perms  []netip.AddrPort // permitted peers
}

// natTimeout bounds STUN/TURN at call setup: a dead server delays the
// INVITE or its answer by this much, then the call goes on without.
const natTimeout = 3 * time.Second

// prepareMediaPath runs after the call's RTP socket is bound and before
// our first SDP: a STUN Binding from that socket (sdp_addr=stun), or a TURN
// allocation over it (media_relay=turn). Failures are recorded in the call's
// status and the call goes on with direct media and its local address, as
// a real phone does when its STUN/TURN server is down.
func (c *Call) prepareMediaPath() {
	p := c.p
	s := p.currentSettings()
	p.mu.Lock()
	conn, done := c.rtp, c.nat.st != nil
	p.mu.Unlock()
	if conn == nil || done {
		return
	}
	st := &CallNATStatus{Socket: conn.LocalAddr().String()}
	ctx, cancel := context.WithTimeout(context.Background(), natTimeout)
	defer cancel()
	switch {
	case s.MediaRelay == MediaRelayTURN:
		c.allocateRelay(ctx, s, st)
	case s.SDPStun:
		st.STUNServer = serverString(s.STUNServer)
		if !s.STUNServer.IsValid() {
			st.STUNError = "sdp_addr is stun but stun_server is none"
			break
		}
		mapped, err := stunturn.Binding(ctx, conn, s.STUNServer)
		st.At = time.Now()
		if err != nil {
			st.STUNError = err.Error()
			c.log.Warn("stun failed: SDP keeps the local address", "err", err)
			break
		}
		st.Mapped = mapped.String()
		c.log.Info("stun mapped rtp socket", "socket", st.Socket, "server", s.STUNServer, "mapped", mapped)
		p.mu.Lock()
		c.nat.mapped = mapped
		p.mu.Unlock()
	default:
		return
	}
	p.mu.Lock()
	c.nat.st = st
	p.notifyLocked()
	p.mu.Unlock()
}

func (c *Call) allocateRelay(ctx context.Context, s liveSettings, st *CallNATStatus) {
	p := c.p
	server := s.turnServer()
	st.TURNServer = serverString(server)
	user, pass := s.TURNUser, s.TURNPassword
	if user == "" {
		user = p.cfg.User
	}
	if pass == "" {
		pass = s.Password
	}
	st.TURNUser = user
	if !server.IsValid() {
		st.TURNError = "media_relay is turn but turn_server and stun_server are none"
		return
	}
	p.mu.Lock()
	conn := c.rtp
	p.mu.Unlock()
	relay, err := stunturn.Allocate(ctx, conn, stunturn.AllocateConfig{Server: server, Username: user, Password: pass, Logger: c.log})
	if err != nil {
		st.TURNError = err.Error()
		c.log.Warn("turn allocation failed: media goes direct", "err", err)
		return
	}
	st.Relayed = relay.Addr().String()
	c.log.Info("turn relay allocated", "server", server, "relayed", relay.Addr(), "base", st.Socket)
	p.mu.Lock()
	if c.rtp != conn || c.state == StateTerminated {
		// The call ended while we allocated.
		p.mu.Unlock()
		relay.Close()
		return
	}
	c.nat.relay = relay
	p.mu.Unlock()
}

// natAdvertisedLocked is the media address our SDP carries: the relayed
// address with TURN, the STUN mapping with sdp_addr=stun, else adv.
func (c *Call) natAdvertisedLocked(s liveSettings, adv netip.AddrPort) netip.AddrPort {
	switch {
	case c.nat.relay != nil:
		return c.nat.relay.Addr()
	case s.SDPStun && c.nat.mapped.IsValid():
		return c.nat.mapped
	}
	return adv
}

// permitPeer installs a TURN permission for the peer's media address
// (from its offer or answer) before media starts, so its first packets are
// not dropped by the relay.
func (c *Call) permitPeer(relay *stunturn.Relay, peer netip.AddrPort) {
	if relay == nil || !peer.IsValid() {
		return
	}
	p := c.p
	p.mu.Lock()
	for _, done := range c.nat.perms {
		if done.Addr() == peer.Addr() {
			p.mu.Unlock()
			return // permissions are per IP (RFC 5766 §8)
		}
	}
	p.mu.Unlock()
	err := relay.Permit(peer)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		c.log.Warn("turn permission failed", "peer", peer, "err", err)
		if c.nat.st != nil {
			c.nat.st.TURNError = err.Error()
		}
		return
	}
	c.nat.perms = append(c.nat.perms, peer)
	if c.nat.st != nil {
		c.nat.st.Permissions = append(c.nat.st.Permissions, peer.Addr().String())
	}
	p.notifyLocked()
}

func (n *callNAT) statusLocked() *CallNATStatus {
	if n.st == nil {
		return nil
	}
	st := *n.st
	st.Permissions = append([]string(nil), n.st.Permissions...)
	return &st
}

// printCallNAT is the call's STUN/TURN line in `uaclient status`.
func printCallNAT(w io.Writer, n *CallNATStatus) {
	if n == nil {
		return
	}
	if n.STUNServer != "" {
		fmt.Fprintf(w, "  stun: asked %s from %s", n.STUNServer, n.Socket)
		if n.Mapped != "" {
			fmt.Fprintf(w, " at %s: mapped %s (written in SDP)", n.At.Format("15:04:05"), n.Mapped)
		}
		if n.STUNError != "" {
			fmt.Fprintf(w, ": FAILED %s (SDP has the local address)", n.STUNError)
		}
		fmt.Fprintln(w)
	}
	if n.TURNServer != "" {
		fmt.Fprintf(w, "  turn: %s as %s from %s", n.TURNServer, n.TURNUser, n.Socket)
		if n.Relayed != "" {
			fmt.Fprintf(w, ": relayed %s (written in SDP), permissions %s", n.Relayed, orDash(strings.Join(n.Permissions, ", ")))
		}
		if n.TURNError != "" {
			fmt.Fprintf(w, ": FAILED %s", n.TURNError)
			if n.Relayed == "" {
				fmt.Fprint(w, " (media goes direct)")
			}
		}
		fmt.Fprintln(w)
	}
}
