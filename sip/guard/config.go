package guard

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Defaults for the fields added after the agreed API: their zero value
// means the default, so a Config literal written against the agreed fields
// stays valid.
const (
	DefaultMaxSources = 50000
	DefaultOtherRate  = 20
	DefaultFloodLimit = 50
	// minIdleAfter keeps a source's state at least this long after its last
	// request, so a bucket is not refilled by evicting it.
	minIdleAfter = 10 * time.Second
	// maxScanner bounds one User-Agent pattern: the list is matched on every
	// request.
	maxScanner = 128
)

// Config is the guard's policy. Start from Default(); see Validate for what
// each zero value means.
type Config struct {
	// RegisterRate and InviteRate are requests per second per source (token
	// bucket refill); Burst is the bucket size. A rate of 0 disables that
	// class's limit.
	RegisterRate, InviteRate float64
	Burst                    int
	// FailedAuthLimit 401/407/403 responses to one source within
	// FailedAuthWindow of the first of them block it for BlockFor.
	// 0 disables failed-auth blocking.
	FailedAuthLimit  int
	FailedAuthWindow time.Duration
	BlockFor         time.Duration
	// ScannerUserAgents are case-insensitive substrings of User-Agent that
	// block a source at once.
	ScannerUserAgents []string
	// Trunks are never rate-limited, blocked or counted (IP-based trust for
	// carriers).
	Trunks []netip.Prefix

	// OtherRate limits the methods that are neither REGISTER nor INVITE
	// (OPTIONS scans, SUBSCRIBE, MESSAGE, BYE...); ACK and CANCEL are never
	// limited. 0 means DefaultOtherRate, negative disables the limit.
	OtherRate float64
	// FloodLimit rate-limited requests from one source within
	// FailedAuthWindow block it: a source that ignores the limit is an
	// attack, not a busy phone. 0 means DefaultFloodLimit, negative never
	// blocks for flooding.
	FloodLimit int
	// MaxSources caps the sources tracked at once (memory bound); the least
	// recently seen are evicted first. 0 means DefaultMaxSources.
	MaxSources int
	// IdleAfter is how long a source's state is kept after its last
	// request (it is evicted lazily). 0 means max(FailedAuthWindow, 10 s).
	IdleAfter time.Duration
}

// Default is the classroom policy: a phone registers and calls freely, a
// brute-force tool or scanner is stopped within seconds.
func Default() Config {
	return Config{
		RegisterRate:     5,
		InviteRate:       5,
		Burst:            10,
		FailedAuthLimit:  10,
		FailedAuthWindow: 60 * time.Second,
		BlockFor:         5 * time.Minute,
		// Substrings seen in scanner and fraud-tool User-Agents (SIPVicious
		// "friendly-scanner", sipcli, VaxSIPUserAgent, sundayddr, iWar, smap,
		// sippts' "pplsip", ...), as in Kamailio's sample configs and
		// fail2ban/APIBAN rule sets.
		ScannerUserAgents: []string{
			"friendly-scanner", "sipvicious", "sipcli", "VaxSIPUserAgent", "sundayddr",
			"iWar", "sip-scan", "SIPScan", "pplsip", "smap", "Test Agent", "sipptk",
		},
	}
}

// AuthOnly is the policy of the daemons behind the edge (registrar,
// proxy): failed-auth blocking with Default's limits (10 wrong passwords
// in 60 s block the source for 5 min), and nothing else — no rate limits,
// flood blocks or scanner list, which are the SBC's job at the edge and
// would only add per-source state here.
func AuthOnly() Config {
	d := Default()
	return Config{
		FailedAuthLimit:  d.FailedAuthLimit,
		FailedAuthWindow: d.FailedAuthWindow,
		BlockFor:         d.BlockFor,
		OtherRate:        -1,
		FloodLimit:       -1,
	}
}

// ParsePrefixes parses a Trusted list as the daemons' -guard-trust flag
// takes it: "cidr,ip,...", a bare IP meaning that one address.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Validate checks c as New and SetConfig will.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// policy is a validated Config with defaults filled and patterns prepared:
// built once per New/SetConfig, read lock-free by every request.
type policy struct {
	Config
	scanners   []string      // lower case
	byFirst    [256][]string // scanners by first byte
	shardCap   int
	idleAfter  time.Duration
	floodLimit int
	otherRate  float64
}

func (c *Config) compile() (*policy, error) {
	bad := func(format string, a ...any) (*policy, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	for name, r := range map[string]float64{"register rate": c.RegisterRate, "invite rate": c.InviteRate, "other rate": c.OtherRate} {
		if math.IsNaN(r) || math.IsInf(r, 0) || (r < 0 && name != "other rate") {
			return bad("%s %v", name, r)
		}
	}
	if (c.RegisterRate > 0 || c.InviteRate > 0 || c.OtherRate >= 0) && c.Burst < 1 {
		return bad("burst %d: want at least 1", c.Burst)
	}
	if c.FailedAuthLimit < 0 {
		return bad("failed auth limit %d", c.FailedAuthLimit)
	}
	if (c.FailedAuthLimit > 0 || c.FloodLimit >= 0) && c.FailedAuthWindow <= 0 {
		return bad("failed auth window %v: want > 0", c.FailedAuthWindow)
	}
	if c.BlockFor <= 0 {
		return bad("block for %v: want > 0", c.BlockFor)
	}
	if c.MaxSources < 0 || (c.MaxSources > 0 && c.MaxSources < shards) {
		return bad("max sources %d: want 0 (default) or at least %d", c.MaxSources, shards)
	}
	if c.IdleAfter < 0 {
		return bad("idle after %v", c.IdleAfter)
	}
	p := &policy{Config: *c}
	p.ScannerUserAgents = append([]string(nil), c.ScannerUserAgents...)
	for _, s := range c.ScannerUserAgents {
		t := strings.TrimSpace(s)
		if t == "" {
			// An empty substring matches every User-Agent: it would block
			// every phone.
			return bad("empty scanner User-Agent pattern")
		}
		if len(t) > maxScanner {
			return bad("scanner User-Agent pattern longer than %d bytes", maxScanner)
		}
		p.scanners = append(p.scanners, strings.ToLower(t))
	}
	p.indexScanners()
	p.Trunks = make([]netip.Prefix, 0, len(c.Trunks))
	for _, t := range c.Trunks {
		if !t.IsValid() {
			return bad("trunk prefix %v", t)
		}
		a, bits := t.Addr(), t.Bits()
		if a.Is4In6() {
			// Packets' sources are unmapped, so the ACL must be too.
			if bits < 96 {
				return bad("trunk prefix %v mixes IPv6 and IPv4 space", t)
			}
			a, bits = a.Unmap(), bits-96
		}
		if bits == 0 {
			// Trusting the whole internet is the guard switched off.
			return bad("trunk prefix %v covers every address", t)
		}
		p.Trunks = append(p.Trunks, netip.PrefixFrom(a, bits).Masked())
	}
	maxSrc := c.MaxSources
	if maxSrc == 0 {
		maxSrc = DefaultMaxSources
	}
	p.MaxSources = maxSrc
	p.shardCap = maxSrc / shards
	p.idleAfter = c.IdleAfter
	if p.idleAfter == 0 {
		p.idleAfter = max(c.FailedAuthWindow, minIdleAfter)
	}
	p.floodLimit = c.FloodLimit
	if p.floodLimit == 0 {
		p.floodLimit = DefaultFloodLimit
	}
	p.otherRate = c.OtherRate
	if p.otherRate == 0 {
		p.otherRate = DefaultOtherRate
	}
	return p, nil
}
