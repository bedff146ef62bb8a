package uaclient

import (
	"errors"
	"testing"
)

// The password is a live setting: a wrong one gets the 401 loop, the right
// one registers again, and status never shows it.
func TestPasswordSettingLive(t *testing.T) {
	_, addr := startRegistrar(t, nil)
	p := startPhone(t, Config{Name: "alice", Password: "secret", Domain: "siplab.test", Proxy: addr, Listen: "127.0.0.2:0"})
	if err := p.Set("password", "guess"); err != nil {
		t.Fatal(err)
	}
	if err := p.Register(testCtx(t)); !errors.Is(err, ErrWrongCredentials) {
		t.Fatalf("with a wrong password: %v, want %v", err, ErrWrongCredentials)
	}
	if got := p.Status().Settings["password"]; got != "(set)" {
		t.Fatalf("status shows password as %q", got)
	}
	if err := p.Set("password", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := p.Register(testCtx(t)); err != nil {
		t.Fatalf("with the right password again: %v", err)
	}
}

// Codecs are a live setting: PCMA only against PCMU only is 488.
func TestCodecsSettingLive(t *testing.T) {
	alice, bob := pair(t, nil, func(c *Config) { c.Settings = map[string]string{"auto_answer": "50ms"} })
	for phone, codecs := range map[*Phone]string{alice: "pcmu", bob: "pcma"} {
		if err := phone.Set("codecs", codecs); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.Set("codecs", "g729"); err == nil {
		t.Fatal("an unknown codec was accepted")
	}
	c, err := alice.Call(testCtx(t), "bob")
	var re *ResponseError
	if err != nil && !errors.As(err, &re) {
		t.Fatal(err)
	}
	code := 0
	if re != nil {
		code = re.Code
	} else {
		code = waitCall(t, alice, c.ID(), StateTerminated).Code
	}
	if code != 488 {
		t.Fatalf("got %d, want 488", code)
	}
	if err := bob.Set("codecs", "pcma,pcmu"); err != nil {
		t.Fatal(err)
	}
	c, err = alice.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if st := waitCall(t, alice, c.ID(), StateConfirmed); st.Codec != "PCMU/8000" {
		t.Fatalf("negotiated %q, want PCMU/8000", st.Codec)
	}
}
