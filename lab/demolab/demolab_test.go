package demolab_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/lab/demolab"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/uaclient"
)

// Each test gets its own 127.0.N.0/24 block so tests never share ports.
func start(t *testing.T, block int, mod func(*demolab.Config)) *demolab.Lab {
	t.Helper()
	users, err := sipauth.NewUsers(
		sipauth.User{Name: "alice", Password: "alice-secret"},
		sipauth.User{Name: "bob", Password: "bob-secret"},
		sipauth.User{Name: "carol", Password: "carol-secret"},
		sipauth.User{Name: "mallory", Password: "mallory-secret", Blocked: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	ip := func(last int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, byte(block), byte(last)}) }
	cfg := demolab.Config{
		Registrar: netip.AddrPortFrom(ip(20), 0),
		Proxy:     netip.AddrPortFrom(ip(10), 0),
		Users:     users,
		Phones: []demolab.PhoneSpec{
			{Name: "alice", Addr: ip(50), Settings: map[string]string{"auto_answer": "200ms"}},
			{Name: "bob", Addr: ip(51), Settings: map[string]string{"auto_answer": "200ms"}},
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab, err := demolab.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	return lab
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// hears reports whether st's media shows the peer's tone arriving.
func hears(st uaclient.CallStatus, peerHz float64) bool {
	return st.Media != nil && st.Media.Received.Packets >= 25 && st.ToneHz > peerHz-30 && st.ToneHz < peerHz+30
}

// callUntil places a call from p to target and waits until it reaches
// state.
func callUntil(t *testing.T, p *uaclient.Phone, target string, state uaclient.CallState) *uaclient.Call {
	t.Helper()
	c, err := p.Call(ctx(t), target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx(t), state); err != nil {
		t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	siptest.WaitFor(t, 10*time.Second, what, cond)
}

func TestCallTwoWayAudioAndByeFromEitherSide(t *testing.T) {
	for _, byeFrom := range []string{"alice", "bob"} {
		t.Run("bye from "+byeFrom, func(t *testing.T) {
			block := 1
			if byeFrom == "bob" {
				block = 2
			}
			lab := start(t, block, nil)
			alice, bob := lab.Phones["alice"], lab.Phones["bob"]
			c := callUntil(t, alice, "bob", uaclient.StateConfirmed)
			eventually(t, "alice and bob hear each other", func() bool {
				b, err := bob.CallStatus("")
				return err == nil && hears(c.Status(), bob.ToneHz()) && hears(b, alice.ToneHz())
			})
			a := c.Status()
			if a.Media.Received.Lost != 0 {
				t.Errorf("loss on loopback: %+v", a.Media.Received)
			}
			if len(a.RouteSet) == 0 {
				t.Errorf("the proxy did not Record-Route: %+v", a)
			}
			var err error
			if byeFrom == "alice" {
				err = c.Hangup(ctx(t))
			} else {
				err = bob.Hangup(ctx(t), "")
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*uaclient.Phone{alice, bob} {
				st, err := p.WaitCall(ctx(t), "", uaclient.StateTerminated)
				if err != nil {
					t.Fatalf("%s: %v", p.Name(), err)
				}
				if st.EndedBy == "" {
					t.Errorf("%s: no end reason: %+v", p.Name(), st)
				}
			}
		})
	}
}

// finalCode places a call from alice and returns how it ended.
func finalCode(t *testing.T, alice *uaclient.Phone, target string) uaclient.CallStatus {
	t.Helper()
	c, err := alice.Call(ctx(t), target)
	var re *uaclient.ResponseError
	if err != nil && !errors.As(err, &re) {
		t.Fatalf("call %s: %v", target, err)
	}
	if c == nil {
		return uaclient.CallStatus{Code: re.Code, Reason: re.Reason}
	}
	st, err := c.Wait(ctx(t), uaclient.StateTerminated)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFailedCalls(t *testing.T) {
	lab := start(t, 3, func(c *demolab.Config) {
		c.Phones = append(c.Phones, demolab.PhoneSpec{Name: "carol", Addr: netip.MustParseAddr("127.0.3.52"),
			Settings: map[string]string{"auto_answer": "0"}})
	})
	alice, carol := lab.Phones["alice"], lab.Phones["carol"]

	t.Run("404 unknown user", func(t *testing.T) {
		if st := finalCode(t, alice, "nobody"); st.Code != 404 {
			t.Fatalf("got %d %s", st.Code, st.Reason)
		}
	})
	t.Run("486 busy", func(t *testing.T) {
		go func() {
			if _, err := carol.WaitCall(ctx(t), "", uaclient.StateRinging); err == nil {
				carol.Reject("", 486)
			}
		}()
		if st := finalCode(t, alice, "carol"); st.Code != 486 {
			t.Fatalf("got %d %s", st.Code, st.Reason)
		}
	})
	t.Run("487 cancel while ringing", func(t *testing.T) {
		c := callUntil(t, alice, "carol", uaclient.StateRinging)
		if err := c.Cancel(ctx(t)); err != nil {
			t.Fatal(err)
		}
		st, err := c.Wait(ctx(t), uaclient.StateTerminated)
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != 487 {
			t.Fatalf("caller ended with %d %s, want 487", st.Code, st.Reason)
		}
		cs, err := carol.WaitCall(ctx(t), "", uaclient.StateTerminated)
		if err != nil {
			t.Fatalf("callee never saw the CANCEL: %v", err)
		}
		if cs.Code != 487 {
			t.Fatalf("callee ended with %d %s", cs.Code, cs.Reason)
		}
	})
	t.Run("480 no binding", func(t *testing.T) {
		if err := carol.Unregister(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if st := finalCode(t, alice, "carol"); st.Code != 480 {
			t.Fatalf("got %d %s", st.Code, st.Reason)
		}
	})
}

func TestCodecMismatch488(t *testing.T) {
	lab := start(t, 4, func(c *demolab.Config) {
		c.Phones[0].Codecs = []sdpneg.Codec{sdpneg.PCMU}
		c.Phones[1].Codecs = []sdpneg.Codec{sdpneg.PCMA}
	})
	if st := finalCode(t, lab.Phones["alice"], "bob"); st.Code != 488 {
		t.Fatalf("got %d %s, want 488 Not Acceptable Here", st.Code, st.Reason)
	}
}

// Registration failures through the proxy: the phone must tell a wrong
// password (401 again, forever) from a policy block (403 after good
// credentials).
func TestRegistrationFailuresThroughProxy(t *testing.T) {
	lab := start(t, 5, nil)
	for _, tt := range []struct {
		user, password string
		want           error
	}{
		{"alice", "wrong", uaclient.ErrWrongCredentials},
		{"mallory", "mallory-secret", uaclient.ErrForbidden},
	} {
		t.Run(tt.user, func(t *testing.T) {
			ph, err := uaclient.New(uaclient.Config{
				Name: tt.user + "-2", User: tt.user, Password: tt.password, Domain: demolab.Domain,
				Proxy: lab.ProxyAddr.String(), Listen: "127.0.5.60:0",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			if err := ph.Start(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if err := ph.Register(ctx(t)); !errors.Is(err, tt.want) {
				t.Fatalf("register: %v, want %v", err, tt.want)
			}
		})
	}
}

// The Via lie: a phone behind NAT writes a Via port nobody can reach. With
// rport on the phone and honoured by the proxy the responses come back to
// where the request came from; with rport off and the proxy ignoring it they
// go to the Via port and are lost (retransmissions, then a timeout).
func TestRportHonouredVersusIgnored(t *testing.T) {
	for _, tt := range []struct {
		name        string
		phoneRport  string
		proxyRport  string
		wantSuccess bool
	}{
		{"rport honoured", "on", proxy.RPortHonour, true},
		{"rport ignored", "off", proxy.RPortIgnore, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			block := 6
			if !tt.wantSuccess {
				block = 7
			}
			lab := start(t, block, nil)
			if _, err := lab.Proxy.Set(proxy.SettingRPort, tt.proxyRport); err != nil {
				t.Fatal(err)
			}
			alice := lab.Phones["alice"]
			// What a NATed phone writes: its private port, not the mapped one.
			unreachable := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(block), 50}), 9)
			for name, v := range map[string]string{"rport": tt.phoneRport, "via_addr": unreachable.String()} {
				if err := alice.Set(name, v); err != nil {
					t.Fatal(err)
				}
			}
			rctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			err := alice.Register(rctx)
			if tt.wantSuccess && err != nil {
				t.Fatalf("register with rport: %v", err)
			}
			if !tt.wantSuccess && err == nil {
				t.Fatal("registered although responses went to the unreachable Via port")
			}
			if !tt.wantSuccess {
				t.Logf("as expected, responses were lost: %v", err)
			}
		})
	}
}

func TestDTMFThroughProxy(t *testing.T) {
	lab := start(t, 8, nil)
	alice, bob := lab.Phones["alice"], lab.Phones["bob"]
	c := callUntil(t, alice, "bob", uaclient.StateConfirmed)
	if err := c.SendDTMF(ctx(t), "19#"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob receives 19#", func() bool {
		st, err := bob.CallStatus("")
		return err == nil && st.DTMFReceived == "19#"
	})
	c.Hangup(ctx(t))
}
