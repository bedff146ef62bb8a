package uaclient

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// Trunk mode on a plain pair: bob trusts only listed sources and screens
// callees; alice presents a calling number with CallAs.
func TestTrunkMode(t *testing.T) {
	screen := func(user string) (int, string) {
		if user == "bob" {
			return 0, ""
		}
		return sip.StatusNotFound, ""
	}
	for _, tt := range []struct {
		name    string
		trusted string // bob's ACL
		callee  string
		want    int // final code of alice's call
	}{
		{"untrusted source", "127.0.0.9/32", "bob", sip.StatusForbidden},
		{"callee refused", "127.0.0.2/32", "carol", sip.StatusNotFound},
		{"trusted and known", "127.0.0.0/24", "bob", sip.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := pair(t, nil, func(c *Config) {
				c.Trusted = []netip.Prefix{netip.MustParsePrefix(tt.trusted)}
				c.AcceptCallee = screen
				c.Settings = map[string]string{"auto_answer": "50ms"}
			})
			opt, _ := alice.Options(ctx, "")
			wantOpt := sip.StatusOK
			if tt.want == sip.StatusForbidden {
				wantOpt = sip.StatusForbidden
			}
			if opt.Code != wantOpt {
				t.Errorf("OPTIONS: %d, want %d", opt.Code, wantOpt)
			}
			call, err := alice.CallAs(ctx, tt.callee+"@"+bob.Addr().String(), "+15550177")
			if err != nil {
				t.Fatal(err)
			}
			st, err := call.Wait(ctx, StateConfirmed, StateTerminated)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tt.want {
				t.Fatalf("call ended %d %s, want %d", st.Code, st.Reason, tt.want)
			}
			calls := bob.Status().Calls
			if tt.want != sip.StatusOK {
				if len(calls) != 0 {
					t.Errorf("a refused INVITE made a call at bob: %+v", calls)
				}
				return
			}
			if !strings.HasPrefix(calls[0].Peer, "sip:+15550177@") {
				t.Errorf("bob sees the call from %q, want the calling number", calls[0].Peer)
			}
		})
	}
	alice, _ := pair(t, nil, nil)
	if _, err := alice.CallAs(testCtx(t), "bob", "+1 555"); err == nil {
		t.Error("CallAs with a space in the From user was accepted")
	}
}
