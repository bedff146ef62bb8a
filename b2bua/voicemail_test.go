package b2bua

import (
	"encoding/binary"
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
	call, err := alice.Call(siptest.Ctx(t, 5*time.Second), l.dial("101"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateRinging)
	if err != nil {
		t.Fatal(err)
	}
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
	if hz := zeroCrossingHz(samples); !near(hz, alice.ToneHz(), 15) {
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
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[36:40]) != "data" {
		t.Fatalf("%s is not a WAV file", path)
	}
	if fmtTag, ch, bits := binary.LittleEndian.Uint16(b[20:]), binary.LittleEndian.Uint16(b[22:]), binary.LittleEndian.Uint16(b[34:]); fmtTag != 1 || ch != 1 || bits != 16 {
		t.Fatalf("wav format %d, %d channels, %d bits", fmtTag, ch, bits)
	}
	n := binary.LittleEndian.Uint32(b[40:])
	if int(n) != len(b)-44 || binary.LittleEndian.Uint32(b[4:]) != 36+n {
		t.Fatalf("wav sizes: data %d, file %d", n, len(b))
	}
	out := make([]int16, n/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return out, int(binary.LittleEndian.Uint32(b[24:]))
}

// zeroCrossingHz estimates a single tone's frequency from sign changes in
// loud 20 ms frames (quiet frames are beep gaps or silence).
func zeroCrossingHz(s []int16) float64 {
	var crossings, samples int
	for off := 0; off+160 <= len(s); off += 160 {
		f := s[off : off+160]
		var sum float64
		for _, v := range f {
			sum += float64(v) * float64(v)
		}
		if sum/160 < 330*330 {
			continue
		}
		// Compare with the sample before each one, across frame edges too.
		for i := max(off, 1); i < off+160; i++ {
			if (s[i-1] < 0) != (s[i] < 0) {
				crossings++
			}
		}
		samples += 160
	}
	if samples == 0 {
		return 0
	}
	return float64(crossings) / 2 / (float64(samples) / 8000)
}
