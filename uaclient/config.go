package uaclient

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipnet"
)

// Config is one phone. The zero value is a working phone on 127.0.0.1 that
// can receive calls; set Proxy to place calls and register.
type Config struct {
	// Name identifies the phone in logs and status; it also picks the
	// default test tone. Empty: User, else "phone".
	Name string
	// User is the SIP user (AOR user part and digest username). Empty: Name.
	User string
	// Password for digest authentication (REGISTER 401, INVITE 407).
	Password string
	// Domain is the AOR host (From/To, REGISTER Request-URI). Empty: the
	// proxy host, else the local address.
	Domain string
	// Proxy is "host:port" of the one SIP server / outbound proxy every
	// out-of-dialog request is sent to (port 5060 when omitted).
	Proxy string
	// Transport is "udp" (default), "tcp" or "tls"; tls needs an Endpoint
	// with TLS enabled (sipnet.Config.TLS), and Via and Contact then name
	// its TLS listener.
	Transport string
	// Listen is the local SIP bind "ip:port". An empty IP means the
	// interface address that routes to the proxy (127.0.0.1 without one);
	// port 0 picks a free port. Ignored when Endpoint is set.
	Listen string
	// Endpoint is an already bound SIP endpoint to use instead of Listen.
	// The phone takes ownership and closes it.
	Endpoint *sipnet.Endpoint
	// RTPPort is the first local RTP port to use; 0 picks any free even
	// port. Concurrent calls take the next even ports.
	RTPPort int
	// Codecs in preference order; empty means PCMU, PCMA.
	Codecs []sdpneg.Codec
	// NoDTMF stops offering/accepting RFC 4733 telephone-event.
	NoDTMF bool
	// ToneHz is the test tone this phone sends; 0 derives one from Name so
	// two phones in a call are told apart by what they hear.
	ToneHz float64
	// Expires is the registration lifetime asked for, in seconds; 0 = 3600.
	Expires int
	// AutoRegister registers at Start and keeps the registration fresh.
	AutoRegister bool
	// Settings are initial values of the live settings (see SettingNames),
	// e.g. {"rport": "off"}; unknown names are an error.
	Settings map[string]string
	// Trusted, when set, is a source ACL (a trunk's IP-based trust): a
	// request from any other address is refused with 403 and logged, ACK
	// dropped. Empty: every source is served, as a phone does.
	Trusted []netip.Prefix
	// AcceptCallee, when set, screens incoming calls by the Request-URI
	// user before ringing: it returns 0 to take the call, else the failure
	// status and reason to refuse it with (404, 484, ...). Nil: every
	// user rings, as on a phone behind a proxy. See trunk.go.
	AcceptCallee func(user string) (code int, reason string)
	// UserAgent is the User-Agent header; empty: "siplab-uaclient".
	UserAgent string
	Logger    *slog.Logger
}

const defaultExpires = 3600

func (c *Config) validate() error {
	if c.Name == "" {
		c.Name = c.User
	}
	if c.Name == "" {
		c.Name = "phone"
	}
	if c.User == "" {
		c.User = c.Name
	}
	if strings.ContainsAny(c.User, " \t@:;<>\"") {
		return fmt.Errorf("%w: user %q contains characters not allowed in a SIP user part", ErrConfig, c.User)
	}
	c.Transport = strings.ToLower(c.Transport)
	switch c.Transport {
	case "":
		c.Transport = sipnet.UDP
	case sipnet.UDP, sipnet.TCP:
	case sipnet.TLS:
		if c.Endpoint == nil {
			return fmt.Errorf("%w: transport tls needs an Endpoint with TLS (certificates, trusted CA)", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: transport %q (want udp, tcp or tls)", ErrConfig, c.Transport)
	}
	if c.Proxy != "" {
		hp, err := normHostPort(c.Proxy, 5060)
		if err != nil {
			return fmt.Errorf("%w: proxy: %w", ErrConfig, err)
		}
		c.Proxy = hp
	}
	if c.Endpoint == nil {
		l, err := c.listenAddr()
		if err != nil {
			return err
		}
		c.Listen = l
	}
	if c.Domain == "" {
		if c.Proxy != "" {
			host, _, _ := net.SplitHostPort(c.Proxy)
			c.Domain = host
		} else if c.Endpoint != nil {
			c.Domain = c.Endpoint.Addr().Addr().String()
		} else {
			host, _, _ := net.SplitHostPort(c.Listen)
			c.Domain = host
		}
	}
	if c.RTPPort < 0 || c.RTPPort > 65534 {
		return fmt.Errorf("%w: rtp port %d out of range", ErrConfig, c.RTPPort)
	}
	if c.RTPPort%2 != 0 {
		return fmt.Errorf("%w: rtp port %d must be even (RTCP takes the odd port above)", ErrConfig, c.RTPPort)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []sdpneg.Codec{sdpneg.PCMU, sdpneg.PCMA}
	}
	for _, cd := range c.Codecs {
		if !cd.Same(sdpneg.PCMU) && !cd.Same(sdpneg.PCMA) {
			return fmt.Errorf("%w: codec %s not supported (pcmu, pcma)", ErrConfig, cd)
		}
	}
	if c.ToneHz == 0 {
		c.ToneHz = DefaultToneHz(c.Name)
	}
	if c.ToneHz < 100 || c.ToneHz > 3500 {
		return fmt.Errorf("%w: tone %.0f Hz outside 100-3500 Hz (G.711 passband)", ErrConfig, c.ToneHz)
	}
	if c.Expires == 0 {
		c.Expires = defaultExpires
	}
	if c.Expires < 0 {
		return fmt.Errorf("%w: expires %d is negative", ErrConfig, c.Expires)
	}
	if c.UserAgent == "" {
		c.UserAgent = "siplab-uaclient"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// listenAddr fills in the local IP when only a port (or nothing) is given.
func (c *Config) listenAddr() (string, error) {
	l := c.Listen
	if l == "" {
		l = ":0"
	}
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return "", fmt.Errorf("%w: sip listen address %q: want ip:port", ErrConfig, c.Listen)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("%w: sip listen port %q", ErrConfig, port)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		ip := localIPTowards(c.Proxy)
		host = ip.String()
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("%w: sip listen address %q: want an ip", ErrConfig, c.Listen)
	}
	return net.JoinHostPort(host, port), nil
}

// localIPTowards is the source address the kernel would pick to reach
// target: connecting a UDP socket sends nothing but runs route selection.
func localIPTowards(target string) netip.Addr {
	fallback := netip.MustParseAddr("127.0.0.1")
	if target == "" {
		return fallback
	}
	c, err := net.Dial("udp", target)
	if err != nil {
		return fallback
	}
	defer c.Close()
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return ap.Addr().Unmap()
}

func normHostPort(s string, defPort int) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sip:"), "sips:")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port given.
		host, port = strings.Trim(s, "[]"), strconv.Itoa(defPort)
	}
	if host == "" {
		return "", fmt.Errorf("%q: empty host", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("%q: bad port", s)
	}
	if strings.ContainsAny(host, " ;@<>/") {
		return "", fmt.Errorf("%q: bad host", s)
	}
	return net.JoinHostPort(host, port), nil
}

// DefaultToneHz gives each phone name its own test frequency: multiples of
// 50 Hz between 400 and 1950 Hz, so "alice hears 850 Hz" identifies bob.
func DefaultToneHz(name string) float64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return float64(400 + (h.Sum32()%32)*50)
}
