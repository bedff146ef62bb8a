package uaclient

import (
	"errors"
	"math"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// mediaFlowing reports whether p's call has received at least n audio
// packets.
func mediaReceived(p *Phone, ref string, n uint64) bool {
	st, err := p.CallStatus(ref)
	return err == nil && st.Media != nil && st.Media.Received.AudioPackets >= n
}

func TestDirectCallTwoWayAudio(t *testing.T) {
	tests := []struct {
		name      string
		hangupBy  string // "alice" (caller) or "bob" (callee)
		transport string
	}{
		{name: "caller hangs up", hangupBy: "alice"},
		{name: "callee hangs up", hangupBy: "bob"},
		{name: "tcp, callee hangs up", hangupBy: "bob", transport: "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := func(c *Config) { c.Transport = tt.transport }
			alice, bob := pair(t, tp, tp)
			ctx := testCtx(t)

			out, err := alice.Call(ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			in := waitCall(t, bob, "", StateRinging)
			if in.Direction != Incoming || in.CallID != out.CallID() {
				t.Fatalf("bob's call %+v does not match alice's %+v", in, out)
			}
			waitCall(t, alice, out.ID(), StateRinging)
			if err := bob.Answer(""); err != nil {
				t.Fatal(err)
			}
			ao := waitCall(t, alice, out.ID(), StateConfirmed)
			bi := waitCall(t, bob, in.ID, StateConfirmed)
			if ao.Code != 200 || bi.Code != 200 {
				t.Fatalf("codes alice %d bob %d, want 200", ao.Code, bi.Code)
			}

			// Two-way audio: each side hears the other's tone, from the
			// address the other side's SDP advertised.
			const n = 25 // half a second of 20 ms packets
			eventually(t, "alice receives audio", func() bool { return mediaReceived(alice, out.ID(), n) })
			eventually(t, "bob receives audio", func() bool { return mediaReceived(bob, in.ID, n) })
			eventually(t, "tones detected", func() bool {
				a, _ := alice.CallStatus(out.ID())
				b, _ := bob.CallStatus(in.ID)
				return a.ToneHz != 0 && b.ToneHz != 0
			})
			a, _ := alice.CallStatus(out.ID())
			b, _ := bob.CallStatus(in.ID)
			if math.Abs(a.ToneHz-bob.ToneHz()) > 30 {
				t.Errorf("alice hears %.0f Hz, bob sends %.0f Hz", a.ToneHz, bob.ToneHz())
			}
			if math.Abs(b.ToneHz-alice.ToneHz()) > 30 {
				t.Errorf("bob hears %.0f Hz, alice sends %.0f Hz", b.ToneHz, alice.ToneHz())
			}
			if got, want := a.Media.Received.LastSource, mustAddrPort(t, b.LocalSDP); got != want {
				t.Errorf("alice gets media from %s, bob's SDP said %s", got, want)
			}
			if got, want := b.Media.Received.LastSource, mustAddrPort(t, a.LocalSDP); got != want {
				t.Errorf("bob gets media from %s, alice's SDP said %s", got, want)
			}
			if a.RemoteSDP != b.LocalSDP || b.RemoteSDP != a.LocalSDP {
				t.Errorf("SDP addresses disagree: alice local %s remote %s, bob local %s remote %s", a.LocalSDP, a.RemoteSDP, b.LocalSDP, b.RemoteSDP)
			}
			if a.Codec != "PCMU/8000" {
				t.Errorf("codec %q, want PCMU/8000", a.Codec)
			}

			hanger, other, href, oref := alice, bob, out.ID(), in.ID
			if tt.hangupBy == "bob" {
				hanger, other, href, oref = bob, alice, in.ID, out.ID()
			}
			if err := hanger.Hangup(ctx, href); err != nil {
				t.Fatal(err)
			}
			h := waitCall(t, hanger, href, StateTerminated)
			o := waitCall(t, other, oref, StateTerminated)
			if h.EndedBy != "local" || o.EndedBy != "remote" || o.EndReason != "BYE received" {
				t.Errorf("ended: hanger %s %q, other %s %q", h.EndedBy, h.EndReason, o.EndedBy, o.EndReason)
			}
			if h.Code != 200 || o.Code != 200 {
				t.Errorf("answered calls keep code 200: %d, %d", h.Code, o.Code)
			}
			// Statistics survive the end of the call.
			if o.Media == nil || o.Media.Received.AudioPackets < n || h.Media == nil || h.Media.Received.AudioPackets < n {
				t.Fatalf("media stats lost after hangup: %+v / %+v", o.Media, h.Media)
			}
		})
	}
}

func TestRejectBusy(t *testing.T) {
	tests := []struct {
		name     string
		code     int
		wantCode int
	}{
		{name: "default is 486", code: 0, wantCode: 486},
		{name: "decline", code: 603, wantCode: 603},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := pair(t, nil, nil)
			out, err := alice.Call(testCtx(t), "bob")
			if err != nil {
				t.Fatal(err)
			}
			waitCall(t, bob, "", StateRinging)
			if err := bob.Reject("", tt.code); err != nil {
				t.Fatal(err)
			}
			a := waitCall(t, alice, out.ID(), StateTerminated)
			if a.Code != tt.wantCode || a.EndedBy != "remote" {
				t.Fatalf("alice: %d %s by %s, want %d by remote", a.Code, a.Reason, a.EndedBy, tt.wantCode)
			}
			b := waitCall(t, bob, "", StateTerminated)
			if b.Code != tt.wantCode || b.EndedBy != "local" {
				t.Fatalf("bob: %d %s by %s", b.Code, b.Reason, b.EndedBy)
			}
		})
	}
}

func TestRejectBadCode(t *testing.T) {
	alice, bob := pair(t, nil, nil)
	if _, err := alice.Call(testCtx(t), "bob"); err != nil {
		t.Fatal(err)
	}
	waitCall(t, bob, "", StateRinging)
	for _, code := range []int{200, 180, 700} {
		if err := bob.Reject("", code); !errors.Is(err, ErrBadValue) {
			t.Errorf("reject %d: err %v, want ErrBadValue", code, err)
		}
	}
}

func TestCancelWhileRinging(t *testing.T) {
	alice, bob := pair(t, nil, nil)
	ctx := testCtx(t)
	out, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, alice, out.ID(), StateRinging)
	if err := alice.Cancel(ctx, ""); err != nil {
		t.Fatal(err)
	}
	a := waitCall(t, alice, out.ID(), StateTerminated)
	if a.Code != sip.StatusRequestTerminated || a.EndedBy != "local" {
		t.Fatalf("alice: %d %s by %s, want 487 by local", a.Code, a.Reason, a.EndedBy)
	}
	b := waitCall(t, bob, "", StateTerminated)
	if b.Code != sip.StatusRequestTerminated || b.EndReason != "CANCEL received" {
		t.Fatalf("bob: %d %s (%s)", b.Code, b.Reason, b.EndReason)
	}
}

func TestCodecMismatch488(t *testing.T) {
	alice, bob := pair(t,
		func(c *Config) { c.Codecs = mustCodecs(t, "pcmu") },
		func(c *Config) { c.Codecs = mustCodecs(t, "pcma") })
	out, err := alice.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	a := waitCall(t, alice, out.ID(), StateTerminated)
	if a.Code != sip.StatusNotAcceptableHere {
		t.Fatalf("alice: %d %s, want 488", a.Code, a.Reason)
	}
	b := waitCall(t, bob, "", StateTerminated)
	if b.Code != sip.StatusNotAcceptableHere {
		t.Fatalf("bob: %d %s", b.Code, b.Reason)
	}
}

func TestDTMF(t *testing.T) {
	alice, bob := pair(t, nil, func(c *Config) { c.Settings = map[string]string{"auto_answer": "0s"} })
	ctx := testCtx(t)
	if err := bob.Set("auto_answer", "10ms"); err != nil {
		t.Fatal(err)
	}
	out, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, alice, out.ID(), StateConfirmed)
	eventually(t, "alice media running", func() bool { return mediaReceived(alice, out.ID(), 5) })
	if err := alice.SendDTMF(ctx, out.ID(), "12#"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob receives DTMF", func() bool {
		st, _ := bob.CallStatus("")
		return st.DTMFReceived == "12#"
	})
	if err := alice.SendDTMF(ctx, out.ID(), "1x"); !errors.Is(err, ErrBadDigits) {
		t.Fatalf("bad digits: err %v", err)
	}
}
