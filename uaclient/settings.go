package uaclient

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/sip/sdpneg"
)

// liveSettings are the knobs an intern turns while the phone runs. Each one is
// a "lie" or a habit of a real phone that the training page names; a change
// applies to the next message the phone writes (the next REGISTER, INVITE,
// keep-alive or the next call's media), never to what was already sent.
type liveSettings struct {
	// Proxy is the outbound server ("ip:port") every out-of-dialog
	// request goes to; changing it re-registers through the new one
	// (proxyset.go). prevProxy is the one it replaced, for the
	// un-REGISTER there.
	Proxy, prevProxy string
	// ViaAddr, ContactAddr and SDPAddr are written into Via sent-by, the
	// Contact URI and the SDP o=/c= (plus m= port when given). Invalid
	// zero value: the local address the phone is bound to, which is the
	// private address behind a NAT — exactly the lie.
	ViaAddr     netip.AddrPort
	ViaIP       netip.Addr // ip only: keep the local port
	ContactAddr netip.AddrPort
	ContactIP   netip.Addr
	SDPAddr     netip.AddrPort
	SDPIP       netip.Addr
	// Rport adds ;rport to Via (RFC 3581) so a server answers to the
	// address it saw rather than the one written.
	Rport bool
	// SymmetricRTP sends RTP from the port it is received on. Off, the
	// phone sends from a second socket, so a peer that latches media sees
	// another port than the SDP said.
	SymmetricRTP bool
	// Keepalive is "off", "crlf" (RFC 5626 double-CRLF ping over UDP) or
	// "options" (OPTIONS ping), sent to the proxy every KeepaliveInterval
	// to hold a NAT pinhole open.
	Keepalive         string
	KeepaliveInterval time.Duration
	// AutoAnswer answers incoming calls after this delay; 0 waits for an
	// answer command.
	AutoAnswer time.Duration
	// Password answers digest challenges; changing it live is how an
	// intern provokes the 401 loop of a wrong password.
	Password string
	// Codecs in preference order, for the next offer or answer; a phone
	// set to PCMA only against one set to PCMU only gets 488.
	Codecs []sdpneg.Codec
	// HoldMode is the direction a hold re-INVITE offers: "sendonly" (we
	// keep sending, music on hold) or "inactive" (silence both ways).
	HoldMode string
	// DTMFMode is how the dtmf command sends digits: "rfc4733" (RTP
	// telephone-event) or "info" (SIP INFO, application/dtmf-relay).
	DTMFMode string
	// SubscribeExpires is the lifetime a SUBSCRIBE asks for, seconds.
	SubscribeExpires int
	// Rel100 is the RFC 3262 reliable provisional response mode: off,
	// supported, prefer or require (prack.go).
	Rel100 string
	// TCPSwitch sends a request over 1300 bytes over TCP (RFC 3261
	// §18.1.1, sipnet's size rule). Off, every request goes over UDP
	// whatever its size and IP fragments the big ones, as on many desk
	// phones: a router that drops fragments loses them.
	TCPSwitch bool
	// DropACK withholds the ACK for a 2xx (and for its retransmissions),
	// as when a NAT or a wrong Contact eats it: the lost-ACK lesson.
	DropACK bool
	// STUN/TURN for media (natmedia.go).
	natSettings
}

// Keep-alive modes.
const (
	KeepaliveOff     = "off"
	KeepaliveCRLF    = "crlf"
	KeepaliveOptions = "options"
)

func defaultSettings() liveSettings {
	return liveSettings{
		Rport:             true,
		SymmetricRTP:      true,
		TCPSwitch:         true,
		Keepalive:         KeepaliveOff,
		KeepaliveInterval: 30 * time.Second,
		HoldMode:          HoldSendOnly,
		DTMFMode:          DTMFRFC4733,
		SubscribeExpires:  600,
		Rel100:            Rel100Supported,
	}
}

// setting is one row of the settings registry: adding a knob is adding a
// row, and the CLI help, Get, Set and the README table all follow from it.
type setting struct {
	Name  string
	Help  string
	get   func(*liveSettings) string
	set   func(*liveSettings, string) error
	apply func(*Phone) // optional side effect after a change
}

// SettingInfo describes a setting for help output.
type SettingInfo struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Help  string `json:"help"`
}

// setOneOf is the setter of a setting that takes one of values (case and
// surrounding space ignored); field is where it goes.
func setOneOf(name string, field func(*liveSettings) *string, values ...string) func(*liveSettings, string) error {
	return func(s *liveSettings, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if slices.Contains(values, v) {
			*field(s) = v
			return nil
		}
		want := strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
		return fmt.Errorf("%w: %s %q (want %s)", ErrBadValue, name, v, want)
	}
}

// addrSetting is a row for an address the phone writes into its messages
// (ip:port, ip, or 'local'); field is where the setting keeps it.
func addrSetting(name, help string, field func(*liveSettings) (*netip.AddrPort, *netip.Addr)) setting {
	return setting{
		Name: name,
		Help: help,
		get: func(s *liveSettings) string {
			ap, ip := field(s)
			return addrString(*ap, *ip)
		},
		set: func(s *liveSettings, v string) (err error) {
			ap, ip := field(s)
			*ap, *ip, err = parseAddrSetting(v)
			return err
		},
	}
}

var settingsTable = []setting{
	proxySetting,
	addrSetting("via_addr",
		"address written in Via sent-by (ip or ip:port; 'local' = bound address). A private address here without rport: responses go nowhere.",
		func(s *liveSettings) (*netip.AddrPort, *netip.Addr) { return &s.ViaAddr, &s.ViaIP }),
	addrSetting("contact_addr",
		"address written in the Contact URI (ip or ip:port; 'local'). A private address here: in-dialog requests (BYE) never arrive, ghost calls; inbound calls lost unless the registrar stores the source.",
		func(s *liveSettings) (*netip.AddrPort, *netip.Addr) { return &s.ContactAddr, &s.ContactIP }),
	{
		Name: "sdp_addr",
		Help: "address written in SDP o=/c= (and m= port when ip:port is given; 'local'; 'stun' = the RTP socket's public mapping from stun_server, next call). A private address here: one-way audio unless the far end latches media.",
		get:  sdpAddrString,
		set:  setSDPAddr,
	},
	{
		Name: "rport",
		Help: "on: add ;rport to Via (RFC 3581) so responses follow the NAT mapping; off: responses go to the written Via address.",
		get:  func(s *liveSettings) string { return live.OnOffWord(s.Rport) },
		set:  func(s *liveSettings, v string) (err error) { s.Rport, err = live.OnOff(v); return err },
	},
	{
		Name: "symmetric_rtp",
		Help: "on: send RTP from the port we receive on; off: send from a separate socket, so latching peers see a different port than the SDP.",
		get:  func(s *liveSettings) string { return live.OnOffWord(s.SymmetricRTP) },
		set:  func(s *liveSettings, v string) (err error) { s.SymmetricRTP, err = live.OnOff(v); return err },
	},
	{
		Name: "tcp_switch",
		Help: "on: a request over 1300 bytes (a long MESSAGE) goes over TCP (RFC 3261 §18.1.1); off: every request over UDP whatever its size — IP fragments the big ones and a router that drops fragments (ALG drop-large) loses them.",
		get:  func(s *liveSettings) string { return live.OnOffWord(s.TCPSwitch) },
		set:  func(s *liveSettings, v string) (err error) { s.TCPSwitch, err = live.OnOff(v); return err },
	},
	{
		Name: "password",
		Help: "digest password for the next REGISTER/INVITE challenge (never shown). A wrong one: 401 again, forever; never 403.",
		get: func(s *liveSettings) string {
			if s.Password == "" {
				return "(none)"
			}
			return "(set)"
		},
		set: func(s *liveSettings, v string) error { s.Password = v; return nil },
	},
	{
		Name: "codecs",
		Help: "audio codecs in preference order for the next call, e.g. pcma or pcmu,pcma. No codec in common with the peer: 488 Not Acceptable Here.",
		get:  func(s *liveSettings) string { return codecList(s.Codecs) },
		set: func(s *liveSettings, v string) error {
			c, err := sdpneg.ParseCodecList(v)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrBadValue, err)
			}
			s.Codecs = c
			return nil
		},
	},
	{
		Name:  "keepalive",
		Help:  "off | crlf | options: ping the proxy to keep the NAT pinhole open (off: inbound calls die when the mapping expires).",
		get:   func(s *liveSettings) string { return s.Keepalive },
		set:   setOneOf("keepalive", func(s *liveSettings) *string { return &s.Keepalive }, KeepaliveOff, KeepaliveCRLF, KeepaliveOptions),
		apply: func(p *Phone) { p.kickKeepalive() },
	},
	{
		Name: "keepalive_interval",
		Help: "time between keep-alives, e.g. 15s (must be at least 1s).",
		get:  func(s *liveSettings) string { return s.KeepaliveInterval.String() },
		set: func(s *liveSettings, v string) error {
			d, err := live.Seconds(v)
			if err != nil {
				return err
			}
			if d < time.Second {
				return fmt.Errorf("%w: keepalive_interval %s is below 1s", ErrBadValue, d)
			}
			s.KeepaliveInterval = d
			return nil
		},
		apply: func(p *Phone) { p.kickKeepalive() },
	},
	{
		Name: "auto_answer",
		Help: "answer incoming calls after this delay (e.g. 2s); 0 = wait for the answer command.",
		get:  func(s *liveSettings) string { return s.AutoAnswer.String() },
		set: func(s *liveSettings, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "off", "no", "false":
				s.AutoAnswer = 0
				return nil
			}
			d, err := live.Seconds(v)
			if err != nil {
				return err
			}
			s.AutoAnswer = d
			return nil
		},
	},
	{
		Name: "hold_mode",
		Help: "sendonly | inactive: the SDP direction a hold re-INVITE offers (sendonly: we keep sending, music on hold; inactive: silence both ways).",
		get:  func(s *liveSettings) string { return s.HoldMode },
		set:  setOneOf("hold_mode", func(s *liveSettings) *string { return &s.HoldMode }, HoldSendOnly, HoldInactive),
	},
	{
		Name: "dtmf_mode",
		Help: "rfc4733 | info: how the dtmf command sends digits (RTP telephone-event, or SIP INFO application/dtmf-relay). A peer expecting the other one hears nothing.",
		get:  func(s *liveSettings) string { return s.DTMFMode },
		set: func(s *liveSettings, v string) error {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case DTMFRFC4733, DTMFInfo:
				s.DTMFMode = v
				return nil
			case "rtp", "4733":
				s.DTMFMode = DTMFRFC4733
				return nil
			}
			return fmt.Errorf("%w: dtmf_mode %q (want rfc4733 or info)", ErrBadValue, v)
		},
	},
	{
		Name: "subscribe_expires",
		Help: "seconds a SUBSCRIBE (BLF, MWI) asks for; refreshed at half the granted time. Short: more refresh traffic; long: a lost notifier goes unnoticed longer.",
		get:  func(s *liveSettings) string { return strconv.Itoa(s.SubscribeExpires) },
		set: func(s *liveSettings, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "s")))
			if err != nil || n < 1 || n > 86400 {
				return fmt.Errorf("%w: subscribe_expires %q (want 1-86400 seconds)", ErrBadValue, v)
			}
			s.SubscribeExpires = n
			return nil
		},
	},
	{
		Name: "ack",
		Help: "send | drop: drop withholds our ACK for a 2xx, as if a NAT lost it: the callee retransmits its 200 OK (0.5 s, 1 s, 2 s, 4 s, ...) and after 32 s hangs up with BYE.",
		get: func(s *liveSettings) string {
			if s.DropACK {
				return "drop"
			}
			return "send"
		},
		set: func(s *liveSettings, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "send", "on":
				s.DropACK = false
				return nil
			case "drop", "off", "lose":
				s.DropACK = true
				return nil
			}
			return fmt.Errorf("%w: ack %q (want send or drop)", ErrBadValue, v)
		},
	},
	{
		Name: "100rel",
		Help: "reliable provisional responses (RFC 3262): off (not supported: Require: 100rel gets 420) | supported (Supported: 100rel, reliable 18x are PRACKed; our 180 is reliable only when the caller requires it) | prefer (our 180 is reliable whenever the caller supports it) | require (our INVITEs carry Require: 100rel).",
		get:  func(s *liveSettings) string { return s.Rel100 },
		set:  setOneOf("100rel", func(s *liveSettings) *string { return &s.Rel100 }, Rel100Off, Rel100Supported, Rel100Prefer, Rel100Require),
	},
}

func lookupSetting(name string) (*setting, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.ReplaceAll(n, "-", "_")
	for i := range settingsTable {
		if settingsTable[i].Name == n {
			return &settingsTable[i], nil
		}
	}
	names := make([]string, len(settingsTable))
	for i, s := range settingsTable {
		names[i] = s.Name
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownSetting, name, strings.Join(names, ", "))
}

// SettingNames lists the settings in their documented order.
func SettingNames() []string {
	out := make([]string, len(settingsTable))
	for i, s := range settingsTable {
		out[i] = s.Name
	}
	return out
}

func (s *liveSettings) set(name, value string) (*setting, error) {
	def, err := lookupSetting(name)
	if err != nil {
		return nil, err
	}
	// Parse into a copy: a bad value must leave the setting as it was.
	next := *s
	if err := def.set(&next, value); err != nil {
		detail := strings.TrimPrefix(err.Error(), ErrBadValue.Error()+": ")
		return nil, fmt.Errorf("%w for %s: %s", ErrBadValue, def.Name, detail)
	}
	*s = next
	return def, nil
}

func (s *liveSettings) list() []SettingInfo {
	out := make([]SettingInfo, len(settingsTable))
	for i, def := range settingsTable {
		out[i] = SettingInfo{Name: def.Name, Value: def.get(s), Help: def.Help}
	}
	return out
}

// parseAddrSetting reads "local"/"" (default), "ip" or "ip:port".
func parseAddrSetting(v string) (netip.AddrPort, netip.Addr, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "local", "auto", "default":
		return netip.AddrPort{}, netip.Addr{}, nil
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, netip.Addr{}, fmt.Errorf("%w: port 0 in %q", ErrBadValue, v)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(strings.Trim(v, "[]"))
	if err != nil {
		return netip.AddrPort{}, netip.Addr{}, fmt.Errorf("%w: %q is not an ip or ip:port (or 'local')", ErrBadValue, v)
	}
	if a.IsUnspecified() {
		return netip.AddrPort{}, netip.Addr{}, fmt.Errorf("%w: unspecified address %q", ErrBadValue, v)
	}
	return netip.AddrPort{}, a.Unmap(), nil
}

func addrString(ap netip.AddrPort, ip netip.Addr) string {
	switch {
	case ap.IsValid():
		return ap.String()
	case ip.IsValid():
		return ip.String()
	}
	return "local"
}

// resolve applies an address setting to the local default.
func resolveAddr(ap netip.AddrPort, ip netip.Addr, local netip.AddrPort) netip.AddrPort {
	switch {
	case ap.IsValid():
		return ap
	case ip.IsValid():
		return netip.AddrPortFrom(ip, local.Port())
	}
	return local
}

func codecList(cs []sdpneg.Codec) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = strings.ToLower(c.Name)
	}
	return strings.Join(names, ",")
}
