package uaclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
)

// startRegistrar runs the lab's real registrar on 127.0.0.5.
func startRegistrar(t *testing.T, mod func(*registrar.Config)) (*registrar.Registrar, string) {
	t.Helper()
	ep := listen(t, "127.0.0.5")
	users, err := sipauth.NewUsers(
		sipauth.User{Name: "alice", Password: "secret"},
		sipauth.User{Name: "mallory", Password: "secret", Blocked: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg := registrar.Config{Domain: "siplab.test", Users: users, Logger: testLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	r, err := registrar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Attach(ep)
	ctx, cancel := context.WithCancel(context.Background())
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		ep.Close()
		r.Close()
	})
	return r, ep.Addr().String()
}

func bindingsOf(r *registrar.Registrar, aor string) []location.Binding {
	bs, _ := r.Lookup(context.Background(), aor)
	return bs
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		password  string
		wantErr   error
		wantMsg   string
		wantState RegState
	}{
		{name: "good credentials", user: "alice", password: "secret", wantState: RegRegistered},
		{name: "wrong password", user: "alice", password: "guess", wantErr: ErrWrongCredentials, wantMsg: "wrong credentials (401 again)", wantState: RegFailed},
		{name: "unknown user", user: "eve", password: "secret", wantErr: ErrWrongCredentials, wantState: RegFailed},
		{name: "blocked by policy", user: "mallory", password: "secret", wantErr: ErrForbidden, wantMsg: "forbidden by policy", wantState: RegFailed},
		{name: "no password configured", user: "alice", wantErr: ErrNoCredentials, wantState: RegFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, addr := startRegistrar(t, nil)
			p := startPhone(t, Config{Name: tt.user, Password: tt.password, Domain: "siplab.test", Proxy: addr, Listen: "127.0.0.2:0"})
			err := p.Register(testCtx(t))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Register: err %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			st := p.Status().Registration
			if st.State != tt.wantState {
				t.Fatalf("state %s, want %s (%+v)", st.State, tt.wantState, st)
			}
			bs := bindingsOf(reg, "sip:"+tt.user+"@siplab.test")
			if tt.wantState != RegRegistered {
				if st.Error == "" {
					t.Error("failed registration reports no error")
				}
				if len(bs) != 0 {
					t.Fatalf("registrar has bindings after a failed registration: %+v", bs)
				}
				return
			}
			if len(bs) != 1 || bs[0].ContactURI != st.Contact {
				t.Fatalf("registrar bindings %+v, phone contact %s", bs, st.Contact)
			}
			if bs[0].Source != p.Addr() {
				t.Errorf("registrar saw the REGISTER from %s, phone is %s", bs[0].Source, p.Addr())
			}
			if len(st.Bindings) != 1 || !st.Bindings[0].Mine || st.Bindings[0].Expires <= 0 {
				t.Fatalf("phone's view of bindings %+v", st.Bindings)
			}
			if st.ExpiresIn <= 0 || !st.RefreshAt.Before(st.Expires) {
				t.Fatalf("expiry %d s, refresh at %v, expires %v", st.ExpiresIn, st.RefreshAt, st.Expires)
			}

			// Unregister removes the binding we made even after the
			// contact setting changed.
			if err := p.Set("contact_addr", "203.0.113.2"); err != nil {
				t.Fatal(err)
			}
			if err := p.Unregister(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if st := p.Status().Registration; st.State != RegUnregistered {
				t.Fatalf("after unregister: %s", st.State)
			}
			if bs := bindingsOf(reg, "sip:alice@siplab.test"); len(bs) != 0 {
				t.Fatalf("bindings left after unregister: %+v", bs)
			}
		})
	}
}

// A registrar that wants longer registrations (423) gets them, and a short
// lifetime is refreshed before it runs out.
func TestRegisterIntervalAndRefresh(t *testing.T) {
	reg, addr := startRegistrar(t, func(c *registrar.Config) { c.MinExpires = 2 * time.Second })
	p := startPhone(t, Config{Name: "alice", Password: "secret", Domain: "siplab.test", Proxy: addr, Listen: "127.0.0.2:0", Expires: 1, AutoRegister: true})
	st, err := p.WaitRegistration(testCtx(t), RegRegistered)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bindings[0].Expires != 2 {
		t.Fatalf("granted %d s, want the registrar's minimum 2", st.Bindings[0].Expires)
	}
	first := bindingsOf(reg, "sip:alice@siplab.test")[0].CSeq
	eventually(t, "a refreshing REGISTER", func() bool {
		bs := bindingsOf(reg, "sip:alice@siplab.test")
		return len(bs) == 1 && bs[0].CSeq > first
	})
}
