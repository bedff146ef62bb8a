package b2bua

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// Bob does not answer extension 101 within its 2 s: the PBX cancels bob's
// leg, answers alice itself and records her RTP; the WAV file holds her
// tone, and bob's phone gets a message-summary NOTIFY.
func TestNoAnswerGoesToVoicemail(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	call, ring := ringUp(t, alice, bob, l.dial("101"))
	if _, err := call.Wait(siptest.Ctx(t, 10*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	if st, _ := bob.WaitCall(siptest.Ctx(t, 5*time.Second), ring.ID, uaclient.StateTerminated); st.Code != 487 {
		t.Fatalf("bob's ringing leg after no answer: %s %d, want terminated 487", st.State, st.Code)
	}
	siptest.WaitFor(t, 5*time.Second, "1.5 s of recording", func() bool {
		c, _ := l.callOf(call.CallID())
		return c.Recording != nil && c.Recording.Seconds >= 1.5
	})
	pc, _ := l.callOf(call.CallID())
	if pc.State != StateVoicemail || pc.Target != "voicemail:bob" {
		t.Fatalf("PBX call %s target %s", pc.State, pc.Target)
	}
	if err := call.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	var box MailboxStatus
	siptest.WaitFor(t, 5*time.Second, "bob's mailbox and its NOTIFY", func() bool {
		for _, m := range l.pbx.Status().Mailbox {
			if m.User == "bob" && len(m.Messages) == 1 && m.LastNotify != "" {
				box = m
				return true
			}
		}
		return false
	})
	msg := box.Messages[0]
	if msg.From != "alice" || msg.Duration < 1500*time.Millisecond {
		t.Fatalf("message %+v", msg)
	}
	// bob never subscribed: the PBX sends the unsolicited NOTIFY, and his
	// phone takes it (200) and shows the lamp.
	if code := strings.Fields(box.LastNotify)[0]; code != "200" {
		t.Fatalf("message-summary NOTIFY to bob: %s", box.LastNotify)
	}
	siptest.WaitFor(t, 3*time.Second, "bob's phone to show the unsolicited MWI", func() bool {
		m := bob.Status().MWI
		return m != nil && m.Unsolicited && m.MessagesWaiting
	})
	samples, rate := readWAV(t, msg.File)
	if rate != 8000 || len(samples) < 12000 {
		t.Fatalf("wav: %d samples at %d Hz", len(samples), rate)
	}
	if hz := siptest.ToneHz(samples); !near(hz, alice.ToneHz(), 15) {
		t.Fatalf("voicemail holds a %.0f Hz tone, alice sends %.0f Hz", hz, alice.ToneHz())
	}
}

// readWAV reads a 16-bit mono PCM WAV as written by the recorder.
func readWAV(t *testing.T, path string) ([]int16, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	samples, rate, err := siptest.ParseWAV(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return samples, rate
}
