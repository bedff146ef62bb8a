package guard

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

func TestBehind(t *testing.T) {
	carrierNet := netip.MustParsePrefix("198.51.100.0/24")
	proxyNet := netip.MustParsePrefix("10.0.0.2/32")
	g, err := Behind(nil, []netip.Prefix{carrierNet}, []netip.Prefix{proxyNet})
	if err != nil {
		t.Fatal(err)
	}
	if g.FailedAuthLimit != AuthOnly().FailedAuthLimit || len(g.Trunks) != 2 || g.Trunks[0] != carrierNet || g.Trunks[1] != proxyNet {
		t.Fatalf("nil policy: got %+v, want AuthOnly trusting both prefixes", g)
	}
	mine := AuthOnly()
	mine.Trunks = make([]netip.Prefix, 1, 4) // room to append into: Behind must not
	mine.Trunks[0] = carrierNet
	g, err = Behind(&mine, []netip.Prefix{proxyNet})
	if err != nil {
		t.Fatal(err)
	}
	if g == &mine || len(mine.Trunks) != 1 || len(g.Trunks) != 2 || mine.Trunks[:2][1] == proxyNet {
		t.Fatalf("caller's Config edited: %+v", mine)
	}
	bad := AuthOnly()
	if _, err := Behind(&bad, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); err == nil {
		t.Fatal("a trunk of the whole internet passed")
	}
}

// capMax is a transaction cap that only remembers its maximum.
type capMax struct{ max int }

func (c *capMax) Max() int     { return c.max }
func (c *capMax) SetMax(n int) { c.max = n }

func TestBehindLiveSet(t *testing.T) {
	badValue, unknown := errors.New("bad value"), errors.New("unknown setting")
	ag, err := NewAuthGuard(AuthOnly(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &capMax{max: 100}
	live := BehindLive{Auth: ag, Cap: tc, Log: slog.New(slog.DiscardHandler), BadValue: badValue, Unknown: unknown}
	for _, tt := range []struct {
		name, value string
		wantErr     error
		check       func(BehindSettings) bool
	}{
		{"max_transactions", "7", nil, func(s BehindSettings) bool { return s.MaxTransactions == 7 }},
		{" MAX_TRANSACTIONS ", "0", nil, func(s BehindSettings) bool { return s.MaxTransactions == 0 }},
		{"max_transactions", "-1", badValue, func(s BehindSettings) bool { return s.MaxTransactions == 0 }},
		{"max_transactions", "lots", badValue, func(s BehindSettings) bool { return s.MaxTransactions == 0 }},
		{SettingAuthFailLimit, "3", nil, func(s BehindSettings) bool { return s.FailLimit == 3 }},
		{SettingAuthFailLimit, "many", badValue, func(s BehindSettings) bool { return s.FailLimit == 3 }},
		{"colour", "red", unknown, func(s BehindSettings) bool { return s.FailLimit == 3 && s.MaxTransactions == 0 }},
	} {
		got, err := live.Set(tt.name, tt.value)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("Set(%q, %q): error %v, want %v", tt.name, tt.value, err, tt.wantErr)
		}
		if !tt.check(got) || got != live.Settings() {
			t.Errorf("Set(%q, %q): settings %+v (in force %+v)", tt.name, tt.value, got, live.Settings())
		}
	}
}

func TestVerdictRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		after       time.Duration
		warn, retry string
	}{
		{5 * time.Minute, "blocked: auth; ends in 5m0s", "300"},
		{1500 * time.Millisecond, "blocked: auth; ends in 2s", "2"},
		{200 * time.Millisecond, "blocked: auth; ends in 0s", "1"},
	} {
		v := Verdict{Reason: "blocked: auth", RetryAfter: tt.after}
		if got := v.BlockedWarning(); got != tt.warn {
			t.Errorf("%v: warning %q, want %q", tt.after, got, tt.warn)
		}
		if got := v.RetryAfterSeconds(); got != tt.retry {
			t.Errorf("%v: Retry-After %q, want %q", tt.after, got, tt.retry)
		}
	}
}
