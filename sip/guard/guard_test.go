package guard

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)

// step is one request (method set, status 0), one observed response
// (status set) or n of them, at t0+at.
type step struct {
	at     time.Duration
	src    string
	method string
	ua     string
	status int
	n      int
	// For requests: what the last of the n must get. reason is a prefix.
	allow  bool
	reason string
	retry  time.Duration // checked when non-zero
}

func req(at time.Duration, src, method string, n int, allow bool, reason string) step {
	return step{at: at, src: src, method: method, n: n, allow: allow, reason: reason}
}

func resp(at time.Duration, src, method string, status, n int) step {
	return step{at: at, src: src, method: method, status: status, n: n}
}

func run(t *testing.T, g *Guard, steps []step) {
	t.Helper()
	for i, s := range steps {
		src := netip.MustParseAddr(s.src)
		now := t0.Add(s.at)
		n := max(s.n, 1)
		if s.status != 0 {
			for range n {
				g.ObserveResponse(src, s.method, s.status, now)
			}
			continue
		}
		var v Verdict
		for j := range n {
			v = g.Admit(src, s.method, s.ua, now)
			if j < n-1 && !v.Allow && s.allow {
				t.Fatalf("step %d (%s %s x%d at %v): request %d refused: %+v", i, s.src, s.method, n, s.at, j+1, v)
			}
		}
		if v.Allow != s.allow || !strings.HasPrefix(v.Reason, s.reason) {
			t.Fatalf("step %d (%s %s %q x%d at %v): got %+v, want allow=%v reason %q...", i, s.src, s.method, s.ua, n, s.at, v, s.allow, s.reason)
		}
		if s.retry != 0 && v.RetryAfter != s.retry {
			t.Fatalf("step %d: retry after %v, want %v", i, v.RetryAfter, s.retry)
		}
	}
}

const (
	phone    = "203.0.113.2"
	other    = "203.0.113.3"
	attacker = "198.18.0.66"
	carrier  = "198.51.100.7"
)

func TestAdmit(t *testing.T) {
	sec := time.Second
	cases := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"register burst then limit", nil, []step{
			req(0, phone, "REGISTER", 10, true, ""),
			{at: 0, src: phone, method: "REGISTER", allow: false, reason: "rate_limited: register", retry: 200 * time.Millisecond},
		}},
		{"refill at the configured rate, capped at burst", nil, []step{
			req(0, phone, "REGISTER", 10, true, ""),
			req(199*time.Millisecond, phone, "REGISTER", 1, false, "rate_limited"),
			req(200*time.Millisecond, phone, "REGISTER", 1, true, ""),
			req(200*time.Millisecond, phone, "REGISTER", 1, false, "rate_limited"),
			req(60*sec, phone, "REGISTER", 10, true, ""),
			req(60*sec, phone, "REGISTER", 1, false, "rate_limited"),
		}},
		{"method classes have their own buckets", nil, []step{
			req(0, phone, "REGISTER", 11, false, "rate_limited: register"),
			req(0, phone, "INVITE", 10, true, ""),
			req(0, phone, "INVITE", 1, false, "rate_limited: invite"),
			req(0, phone, "OPTIONS", 10, true, ""),
			req(0, phone, "OPTIONS", 1, false, "rate_limited: other"),
		}},
		{"ACK and CANCEL are never limited", nil, []step{
			req(0, phone, "INVITE", 11, false, "rate_limited"),
			req(0, phone, "ACK", 500, true, ""),
			req(0, phone, "CANCEL", 500, true, ""),
		}},
		{"sources are limited separately", nil, []step{
			req(0, attacker, "REGISTER", 11, false, "rate_limited"),
			req(0, phone, "REGISTER", 10, true, ""),
		}},
		{"rate 0 disables the class", func(c *Config) { c.RegisterRate = 0 }, []step{
			req(0, phone, "REGISTER", 1000, true, ""),
			req(0, phone, "INVITE", 11, false, "rate_limited"),
		}},
		{"scanner user agent blocks at once, any case, until BlockFor", nil, []step{
			{at: 0, src: attacker, method: "OPTIONS", ua: "FRIENDLY-SCANNER 1.0", allow: false, reason: "blocked: scanner: friendly-scanner", retry: 5 * time.Minute},
			{at: sec, src: attacker, method: "REGISTER", ua: "Linphone", allow: false, reason: "blocked: scanner", retry: 5*time.Minute - sec},
			req(5*time.Minute-1, attacker, "REGISTER", 1, false, "blocked"),
			req(5*time.Minute, attacker, "REGISTER", 1, true, ""),
			req(0, phone, "REGISTER", 1, true, ""),
		}},
		{"every default scanner pattern", nil, func() []step {
			var s []step
			for i, ua := range Default().ScannerUserAgents {
				src := netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}).String()
				s = append(s, step{src: src, method: "INVITE", ua: "x " + strings.ToUpper(ua) + " y", reason: "blocked: scanner: " + strings.ToLower(ua)})
			}
			return s
		}()},
		{"failed auths block within the window, block expires", nil, []step{
			resp(0, attacker, "REGISTER", 401, 9),
			req(sec, attacker, "REGISTER", 1, true, ""),
			resp(30*sec, attacker, "INVITE", 407, 1),
			{at: 30 * sec, src: attacker, method: "REGISTER", reason: "blocked: failed_auth: 10 in 1m0s", retry: 5 * time.Minute},
			req(0, phone, "REGISTER", 1, true, ""),
			req(30*sec+5*time.Minute, attacker, "REGISTER", 1, true, ""),
			// A clean slate after the block: 9 more failures do not block.
			resp(31*sec+5*time.Minute, attacker, "REGISTER", 403, 9),
			req(32*sec+5*time.Minute, attacker, "REGISTER", 1, true, ""),
		}},
		{"failures more than a window apart do not add up", nil, []step{
			resp(0, phone, "REGISTER", 401, 9),
			resp(61*sec, phone, "REGISTER", 401, 9),
			req(62*sec, phone, "REGISTER", 1, true, ""),
		}},
		{"other statuses are not failures", nil, []step{
			resp(0, phone, "INVITE", 404, 50),
			resp(0, phone, "INVITE", 486, 50),
			resp(0, phone, "REGISTER", 500, 50),
			req(sec, phone, "REGISTER", 1, true, ""),
		}},
		{"a 2xx forgives one failure, never all", nil, []step{
			resp(0, phone, "REGISTER", 401, 9),
			resp(0, phone, "REGISTER", 200, 1), // 8
			resp(0, phone, "REGISTER", 401, 1), // 9
			req(0, phone, "REGISTER", 1, true, ""),
			resp(0, phone, "REGISTER", 401, 1), // 10
			req(0, phone, "REGISTER", 1, false, "blocked: failed_auth"),
		}},
		{"attacker with one good account is still caught", nil, func() []step {
			var s []step
			// Each round: a challenge and a wrong guess (two 401s), then
			// the good account's challenge (401) and its 200: three
			// failures, one forgiven, so the 5th round reaches 10.
			for i := range 9 {
				at := time.Duration(i) * sec
				s = append(s, resp(at, attacker, "REGISTER", 401, 2), resp(at, attacker, "REGISTER", 401, 1), resp(at, attacker, "REGISTER", 200, 1))
				s = append(s, req(at, attacker, "REGISTER", 1, i < 4, map[bool]string{true: "", false: "blocked: failed_auth"}[i < 4]))
			}
			return s
		}()},
		{"a source that ignores the limit is blocked for flooding", nil, []step{
			req(0, attacker, "INVITE", 10, true, ""),
			req(0, attacker, "INVITE", 49, false, "rate_limited: invite"),
			{at: 0, src: attacker, method: "INVITE", reason: "blocked: flood: 50 rate-limited requests in 1m0s", retry: 5 * time.Minute},
			req(sec, attacker, "OPTIONS", 1, false, "blocked: flood"),
		}},
		{"flood blocking can be off", func(c *Config) { c.FloodLimit = -1 }, []step{
			req(0, attacker, "INVITE", 1000, false, "rate_limited"),
			req(2*sec, attacker, "INVITE", 10, true, ""),
		}},
		{"trunks are never limited or blocked", func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")} }, []step{
			req(0, carrier, "INVITE", 1000, true, "trunk"),
			{src: carrier, method: "OPTIONS", ua: "friendly-scanner", allow: true, reason: "trunk"},
			resp(0, carrier, "INVITE", 407, 100),
			req(0, carrier, "INVITE", 1, true, "trunk"),
			req(0, "198.51.101.7", "INVITE", 11, false, "rate_limited"),
		}},
		{"an IPv6 /64 is one source; IPv4-mapped is IPv4", nil, []step{
			req(0, "2001:db8::1", "REGISTER", 5, true, ""),
			req(0, "2001:db8::ffff:1", "REGISTER", 5, true, ""),
			req(0, "2001:db8::2", "REGISTER", 1, false, "rate_limited"),
			req(0, "2001:db8:0:1::1", "REGISTER", 1, true, ""),
			req(0, "::ffff:"+phone, "REGISTER", 10, true, ""),
			req(0, phone, "REGISTER", 1, false, "rate_limited"),
		}},
		{"a clock going backwards refills nothing", nil, []step{
			req(sec, phone, "REGISTER", 10, true, ""),
			req(0, phone, "REGISTER", 1, false, "rate_limited"),
			req(sec, phone, "REGISTER", 1, false, "rate_limited"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			run(t, g, tc.steps)
		})
	}
}

func TestContainsFold(t *testing.T) {
	cases := []struct {
		s, lower string
		want     bool
	}{
		{"friendly-scanner", "friendly-scanner", true},
		{"X FRIENDLY-Scanner/1.0", "friendly-scanner", true},
		{"friendly-scanne", "friendly-scanner", false},
		{"Linphone/5.2.0 (belle-sip/5.2.0)", "smap", false},
		{"smap", "smap", true},
		{"", "smap", false},
		{"anything", "", false},
		{"Ünïcode iwar", "iwar", true},
	}
	for _, tc := range cases {
		if got := containsFold(tc.s, tc.lower); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v", tc.s, tc.lower, got)
		}
	}
	// Only the first maxUserAgentScan bytes are searched.
	p, err := func() (*policy, error) { c := Default(); return c.compile() }()
	if err != nil {
		t.Fatal(err)
	}
	if got := p.scanner(strings.Repeat(" ", maxUserAgentScan-5) + "sipcli"); got != "" {
		t.Errorf("pattern past the scanned prefix matched %q", got)
	}
	if got := p.scanner(strings.Repeat(" ", maxUserAgentScan-6) + "sipcli"); got != "sipcli" {
		t.Errorf("pattern inside the scanned prefix: %q", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the prefixes joined by ","; "error" for an error
	}{
		{"", ""},
		{"10.0.0.5", "10.0.0.5/32"},
		{" 10.0.0.0/8 , 192.168.1.77/24,, 2001:db8::1", "10.0.0.0/8,192.168.1.0/24,2001:db8::1/128"},
		{"10.0.0.0/8,proxy", "error"},
	} {
		ps, err := ParsePrefixes(tc.in)
		got := "error"
		if err == nil {
			s := make([]string, len(ps))
			for i, p := range ps {
				s[i] = p.String()
			}
			got = strings.Join(s, ",")
		}
		if got != tc.want {
			t.Errorf("ParsePrefixes(%q) = %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
}
