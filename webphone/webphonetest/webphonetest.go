// Package webphonetest drives the browser phone page (webphone/) in headless
// Chromium for tests: the loopback test in sbc/ and the lab test in e2e/
// share the tone microphone, the browser flags and window.phoneState.
package webphonetest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is Debian's package; without it the tests fail, never skip.
const Chromium = "/usr/bin/chromium"

// ToneHz is the browser's fake microphone: a tone no lab phone uses.
const ToneHz = 700

// WriteToneWAV writes a 16-bit mono 48 kHz sine, what Chromium's
// --use-file-for-fake-audio-capture plays (and loops) as the microphone.
func WriteToneWAV(t testing.TB, path string, hz float64, seconds int) {
	t.Helper()
	const rate = 48000
	n := rate * seconds
	b := make([]byte, 44+2*n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		v := int16(0.5 * 32767 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// NewBrowser starts headless Chromium with the fake microphone playing
// wav, plus extra options; the contexts end with the test.
func NewBrowser(t testing.TB, wav string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := exec.LookPath(Chromium); err != nil {
		t.Fatalf("headless Chromium is needed for the web phone test: %v (apt-get install chromium)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Chromium),
		chromedp.Flag("log-level", "3"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// The lab CA is not in this browser's trust store: the intern
		// accepts the one certificate exception by hand.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// Selected is the selected candidate pair in getStats.
type Selected struct {
	Local, Remote         string
	LocalType, RemoteType string
}

// State is window.phoneState.
type State struct {
	Ready      bool      `json:"ready"`
	Registered bool      `json:"registered"`
	Call       string    `json:"call"`
	Error      string    `json:"error"`
	ICE        string    `json:"ice"`
	Selected   *Selected `json:"selected"`
	Inbound    *struct {
		PacketsReceived  int     `json:"packetsReceived"`
		AudioLevel       float64 `json:"audioLevel"`
		TotalAudioEnergy float64 `json:"totalAudioEnergy"`
		Codec            string  `json:"codec"`
	} `json:"inbound"`
	Candidates []struct {
		Side, Type, Address string
	} `json:"candidates"`
	Pairs []struct {
		Local, Remote, State string
		Nominated            bool
		RequestsSent         int `json:"requestsSent"`
		ResponsesReceived    int `json:"responsesReceived"`
	} `json:"pairs"`
}

// Read returns window.phoneState.
func Read(t testing.TB, ctx context.Context) State {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.phoneState || {})`))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("phoneState %q: %v", s, err)
	}
	return st
}

// Wait polls window.phoneState until ok, failing the test after d.
func Wait(t testing.TB, ctx context.Context, what string, d time.Duration, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := Read(t, ctx)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("web phone: timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
