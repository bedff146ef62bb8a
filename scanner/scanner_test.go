package scanner

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
)

// startRegistrar runs the lab's real registrar on a loopback port.
func startRegistrar(t *testing.T) netip.AddrPort {
	t.Helper()
	users, err := sipauth.ParseUsers(strings.NewReader("alice s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{sipnet.UDP}, UserAgent: "siplab-registrar"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registrar.New(registrar.Config{Domain: "siplab.test", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	reg.Attach(ep)
	ctx, cancel := context.WithCancel(context.Background())
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); ep.Close(); reg.Close() })
	return ep.Addr()
}

func socket(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRegisterGuessingAgainstTheRealRegistrar(t *testing.T) {
	target := startRegistrar(t)
	tests := []struct {
		name      string
		passwords []string
		count     int
		cracked   string
		want401   int
	}{
		{"every guess wrong", []string{"123456", "password", "alice"}, 6, "", 6},
		{"third guess right", []string{"1234", "alice", "s3cret", "never-tried"}, 10, "s3cret", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(context.Background(), socket(t), Config{
				Target: target, Mode: ModeRegister, Domain: "siplab.test", User: "alice",
				Passwords: tt.passwords, Count: tt.count, Rate: 200, Timeout: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Cracked != tt.cracked {
				t.Errorf("cracked = %q, want %q", rep.Cracked, tt.cracked)
			}
			if rep.Statuses[401] != tt.want401 {
				t.Errorf("401s = %d, want %d (report %+v)", rep.Statuses[401], tt.want401, rep)
			}
			if rep.Silent != 0 {
				t.Errorf("silent = %d: the registrar answers every attempt", rep.Silent)
			}
			if tt.cracked != "" && rep.Statuses[200] != 1 {
				t.Errorf("200s = %d, want 1", rep.Statuses[200])
			}
		})
	}
}

func TestOptionsSweepSeesTheServerAndCountsSilence(t *testing.T) {
	target := startRegistrar(t)
	rep, err := Run(context.Background(), socket(t), Config{Target: target, Mode: ModeOptions, Count: 3, Rate: 100, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Silent != 0 || rep.LastAnswered != 3 || rep.Statuses[200] != 3 {
		t.Errorf("report %+v: want three 200s", rep)
	}

	// A socket that reads and never answers is what a blocked attacker sees.
	dead := socket(t)
	deadAddr := netip.MustParseAddrPort(dead.LocalAddr().String())
	rep, err = Run(context.Background(), socket(t), Config{Target: deadAddr, Mode: ModeOptions, Count: 2, Rate: 100, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Silent != 2 || rep.LastAnswered != 0 {
		t.Errorf("report %+v: want 2 silent attempts", rep)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	good := netip.MustParseAddrPort("127.0.0.1:5060")
	for _, cfg := range []Config{
		{Mode: ModeOptions, Count: 1, Rate: 1},
		{Target: good, Mode: "flood", Count: 1, Rate: 1},
		{Target: good, Mode: ModeRegister, Count: 1, Rate: 1, Passwords: []string{"x"}},
		{Target: good, Mode: ModeRegister, Count: 1, Rate: 1, User: "alice"},
		{Target: good, Mode: ModeOptions, Count: 0, Rate: 1},
		{Target: good, Mode: ModeOptions, Count: 1, Rate: 0},
		{Target: good, Mode: ModeOptions, Count: 1, Rate: 5000},
	} {
		if _, err := Run(context.Background(), socket(t), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: err = %v, want ErrBadConfig", cfg, err)
		}
	}
}
