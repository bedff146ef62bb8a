package carrier

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/siplab/siplab/sip/sipnet"
)

// Config is one carrier switch. Endpoint and Peer and Numbers are
// required; the rest has lab defaults.
type Config struct {
	// Name in logs and status; it also picks the test tone. Default
	// "carrier".
	Name string
	// Endpoint is the bound SIP endpoint: UDP+TCP, and a TLS listener and
	// trust when the trunk runs over TLS. The carrier takes ownership.
	Endpoint *sipnet.Endpoint
	// Peer is the trunk peer "ip:port" (the platform's SBC): outbound
	// calls and OPTIONS pings go there. Names are refused: no DNS in the lab.
	Peer string
	// PeerTransport is udp (default), tcp or tls.
	PeerTransport string
	// Trusted are the source prefixes served (IP-based trust, the
	// carrier's ACL); anything else gets 403. Default: the peer's IP /32.
	Trusted []netip.Prefix
	// Numbers are the E.164 prefixes this carrier terminates ("+1555").
	Numbers []string
	// AnswerAfter is how long a called subscriber rings before answering;
	// 0 answers only by command.
	AnswerAfter time.Duration
	// OptionsInterval is the time between OPTIONS pings to the peer;
	// 0 = 30s, negative = no pings.
	OptionsInterval time.Duration
	// DefaultFrom is the calling number of outbound calls that name none.
	// Default "+15550199".
	DefaultFrom string
	// RTPPort is the first local RTP port (even); 0 = any free port.
	RTPPort int
	// ToneHz is the subscriber's test tone; 0 derives it from Name.
	ToneHz float64
	Logger *slog.Logger
}

const (
	defaultName            = "carrier"
	defaultOptionsInterval = 30 * time.Second
	defaultFrom            = "+15550199"
)

// validate fills defaults and returns the parsed number ranges.
func (c *Config) validate() (Ranges, error) {
	if c.Endpoint == nil {
		return nil, fmt.Errorf("%w: no SIP endpoint", ErrConfig)
	}
	if c.Name == "" {
		c.Name = defaultName
	}
	peer, err := netip.ParseAddrPort(c.Peer)
	if err != nil {
		return nil, fmt.Errorf("%w: peer %q: want ip:port (the lab has no DNS): %w", ErrConfig, c.Peer, err)
	}
	c.Peer = peer.String()
	c.PeerTransport = strings.ToLower(c.PeerTransport)
	switch c.PeerTransport {
	case "":
		c.PeerTransport = sipnet.UDP
	case sipnet.UDP, sipnet.TCP:
	case sipnet.TLS:
		if _, err := c.Endpoint.Client(sipnet.TLS); err != nil {
			return nil, fmt.Errorf("%w: peer transport tls: the endpoint has no TLS (trusted CA): %w", ErrConfig, err)
		}
	default:
		return nil, fmt.Errorf("%w: peer transport %q (want udp, tcp or tls)", ErrConfig, c.PeerTransport)
	}
	if len(c.Trusted) == 0 {
		c.Trusted = []netip.Prefix{netip.PrefixFrom(peer.Addr(), peer.Addr().BitLen())}
	}
	for i, p := range c.Trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: trusted prefix %v", ErrConfig, p)
		}
		c.Trusted[i] = p.Masked()
	}
	ranges, err := parseRanges(c.Numbers)
	if err != nil {
		return nil, err
	}
	if c.AnswerAfter < 0 {
		return nil, fmt.Errorf("%w: answer-after %s is negative", ErrConfig, c.AnswerAfter)
	}
	if c.OptionsInterval == 0 {
		c.OptionsInterval = defaultOptionsInterval
	}
	if c.OptionsInterval > 0 && c.OptionsInterval < time.Second {
		return nil, fmt.Errorf("%w: options interval %s below 1s", ErrConfig, c.OptionsInterval)
	}
	if c.DefaultFrom == "" {
		c.DefaultFrom = defaultFrom
	}
	if err := ValidE164(c.DefaultFrom); err != nil {
		return nil, fmt.Errorf("%w: default calling number: %w", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return ranges, nil
}
