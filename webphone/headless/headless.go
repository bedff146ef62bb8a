// Package headless drives the browser phone page (webphone/) in headless
// Chromium with a fake microphone playing a tone: open the page, register,
// call, hang up, read window.phoneState (getStats: candidates, pairs, the
// selected pair, inbound audio). The loopback test in sbc/, the lab test in
// e2e/, `siplab webphone call` and the ICE exercises all place their
// browser calls through it.
package headless

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/internal/chromium"
)

// Chromium is Debian's package (apt-get install chromium).
const Chromium = chromium.Path

// ToneHz is the browser's fake microphone: a tone no lab phone uses.
const ToneHz = 700

// ErrNoChromium is returned when Chromium is not installed.
var ErrNoChromium = errors.New("headless: Chromium is needed for a browser call (apt-get install chromium)")

// ToneWAV is a 16-bit mono 48 kHz sine, what Chromium's
// --use-file-for-fake-audio-capture plays (and loops) as the microphone.
func ToneWAV(hz float64, seconds int) []byte {
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
	return b
}

// Start starts headless Chromium with the fake microphone playing wav (a
// file, see ToneWAV), plus extra options (InNamespace). The returned
// context is the browser's tab; stop closes the browser. The tab lives at
// most life.
func Start(wav string, life time.Duration, extra ...chromedp.ExecAllocatorOption) (ctx context.Context, stop func(), err error) {
	if _, err := exec.LookPath(Chromium); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoChromium, err)
	}
	if _, err := os.Stat(wav); err != nil {
		return nil, nil, fmt.Errorf("headless: the microphone file: %w", err)
	}
	opts := chromium.Options(
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
	cctx, cancelC := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(cctx, life)
	stop = func() { cancelT(); cancelC(); cancelA() }
	// Start the browser now, so a Chromium that cannot run is an error here.
	if err := chromedp.Do(tctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("headless: start %s: %w", Chromium, err)
	}
	return tctx, stop, nil
}

// Selected is the selected candidate pair in getStats.
type Selected struct {
	Local, Remote         string
	LocalType, RemoteType string
}

// Candidate is one ICE candidate in getStats.
type Candidate struct {
	Side, Type, Address string
}

// Pair is one candidate pair in getStats, with its connectivity checks.
type Pair struct {
	Local, Remote, State string
	Nominated            bool
	RequestsSent         int `json:"requestsSent"`
	ResponsesReceived    int `json:"responsesReceived"`
}

// Inbound is the received audio in getStats.
type Inbound struct {
	PacketsReceived  int     `json:"packetsReceived"`
	AudioLevel       float64 `json:"audioLevel"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
	Codec            string  `json:"codec"`
}

// State is window.phoneState.
type State struct {
	Ready      bool   `json:"ready"`
	Registered bool   `json:"registered"`
	Call       string `json:"call"`
	Error      string `json:"error"`
	// Notice is what the page asks the user to fix outside it (accept the
	// lab certificate, open it in a secure context); Secure is whether it
	// may use the microphone; WSURL the SIP WebSocket it opens.
	Notice     string      `json:"notice"`
	Secure     bool        `json:"secure"`
	WSURL      string      `json:"wsURL"`
	ICE        string      `json:"ice"`
	Gathering  string      `json:"gathering"`
	Selected   *Selected   `json:"selected"`
	Inbound    *Inbound    `json:"inbound"`
	Candidates []Candidate `json:"candidates"`
	Pairs      []Pair      `json:"pairs"`
}

// Local lists the page's local candidates of one type.
func (s State) Local(typ string) []string {
	var out []string
	for _, c := range s.Candidates {
		if c.Side == "local" && c.Type == typ {
			out = append(out, c.Address)
		}
	}
	return out
}

// Hearing says whether the browser receives audio on a selected pair.
func (s State) Hearing() bool {
	return s.Inbound != nil && s.Inbound.PacketsReceived > 50 && s.Inbound.AudioLevel > 0.01 && s.Selected != nil
}

// Read returns window.phoneState.
func Read(ctx context.Context) (State, error) {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.phoneState || {})`))
	if err != nil {
		return State{}, fmt.Errorf("headless: read the page's state: %w", err)
	}
	var st State
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return State{}, fmt.Errorf("headless: phoneState %q: %w", s, err)
	}
	return st, nil
}

// ErrTimeout is returned by Wait when the page never got there.
var ErrTimeout = errors.New("headless: timed out")

// Wait polls window.phoneState until ok, for at most d; it returns the
// last state read either way.
func Wait(ctx context.Context, what string, d time.Duration, ok func(State) bool) (State, error) {
	deadline := time.Now().Add(d)
	for {
		st, err := Read(ctx)
		if err != nil {
			return st, err
		}
		if ok(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%w waiting %s for %s", ErrTimeout, d, what)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Open loads the page at url and registers with password (the user and
// the call's target come from the URL: ?user=dave&target=bob).
func Open(ctx context.Context, url, password string) error {
	err := chromedp.Do(ctx, chromedp.Navigate(url))
	if err != nil && strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
		// Chromium aborts a load when an interface of its host changes
		// under it (a namespace's link just up, a lab container
		// starting on a bridge it sees); a person would reload, so do we,
		// once.
		time.Sleep(500 * time.Millisecond)
		err = chromedp.Do(ctx, chromedp.Navigate(url))
	}
	if err != nil {
		return fmt.Errorf("headless: load %s: %w", url, err)
	}
	if _, err := Wait(ctx, "the page", 20*time.Second, func(s State) bool { return s.Ready }); err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("password"), password), chromedp.Click(chromedp.ID("register"))); err != nil {
		return fmt.Errorf("headless: register: %w", err)
	}
	st, err := Wait(ctx, "the REGISTER's answer", 15*time.Second, func(s State) bool { return s.Registered || s.Error != "" })
	if err != nil {
		return err
	}
	if !st.Registered {
		return fmt.Errorf("headless: REGISTER over WSS: %s", st.Error)
	}
	return nil
}

// Call clicks Call and waits for the call's final answer (its ICE may
// still be checking).
func Call(ctx context.Context) (State, error) {
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		return State{}, fmt.Errorf("headless: call: %w", err)
	}
	st, err := Wait(ctx, "the call's answer", 40*time.Second, func(s State) bool { return s.Call == "confirmed" || s.Call == "failed" })
	if err != nil {
		return st, err
	}
	if st.Call != "confirmed" {
		return st, fmt.Errorf("headless: the call failed: %s", st.Error)
	}
	return st, nil
}

// clickIf clicks the buttons with these ids that are enabled.
const clickIf = `(ids => { for (const id of ids) { const b = document.getElementById(id); if (b && !b.disabled) b.click(); } return true; })`

// HangUp clicks Hang up if a call is up.
func HangUp(ctx context.Context) error {
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](clickIf+`(["hangup"])`))
	return err
}

// Leave hangs up and unregisters whatever is up, then gives the BYE and
// the un-REGISTER a moment to leave before the browser closes: no gateway
// call or binding outlives the browser.
func Leave(ctx context.Context) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](clickIf+`(["hangup", "unregister"])`)); err == nil {
		time.Sleep(2 * time.Second)
	}
}
