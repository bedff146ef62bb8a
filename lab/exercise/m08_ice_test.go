package exercise

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/browsersite"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/webphone/headless"
)

// browserRecorder is a recorder whose lab has a browser site: it records
// the webphone steps and refuses browser calls (none can be placed here).
type browserRecorder struct{ recorder }

func (b *browserRecorder) WebPhone(_ context.Context, args ...string) ([]byte, error) {
	b.calls = append(b.calls, "webphone: "+strings.Join(args, " "))
	return []byte("ok"), nil
}

func (b *browserRecorder) BrowserCall(context.Context, browsersite.CallOptions, func(context.Context, headless.State) error) (browsersite.Outcome, error) {
	b.calls = append(b.calls, "browser call")
	return browsersite.Outcome{}, browsersite.ErrNotRoot
}

func TestWebPhoneSteps(t *testing.T) {
	if _, err := RunStep(context.Background(), &recorder{}, Run("webphone call dave bob")); err == nil || !strings.Contains(err.Error(), "no browser site") {
		t.Errorf("a webphone step on a lab without a browser site: %v", err)
	}
	b := &browserRecorder{}
	if _, err := RunStep(context.Background(), b, Run("webphone call dave bob -policy relay")); err != nil {
		t.Fatal(err)
	}
	if want := "webphone: call dave bob -policy relay"; len(b.calls) != 1 || b.calls[0] != want {
		t.Errorf("got %q, want %q", b.calls, want)
	}
}

func TestGatewaySees(t *testing.T) {
	for _, tc := range []struct {
		pair, typ, addr string
		ok              bool
	}{
		{"host 203.0.113.5:8443 <-> prflx 203.0.113.9:40123", "prflx", "203.0.113.9:40123", true},
		{"host 203.0.113.5:8443 <-> relay 203.0.113.20:40007", "relay", "203.0.113.20:40007", true},
		{"", "", "", false},
		{"host 203.0.113.5:8443 <-> ?", "", "", false},
	} {
		typ, addr, ok := WebCall{Gateway: &webrtcgw.Stats{SelectedPair: tc.pair}}.GatewaySees()
		if ok != tc.ok || (ok && (typ != tc.typ || addr.String() != tc.addr)) {
			t.Errorf("%q: %s %s %v, want %s %s %v", tc.pair, typ, addr, ok, tc.typ, tc.addr, tc.ok)
		}
	}
	if _, _, ok := (WebCall{}).GatewaySees(); ok {
		t.Error("no gateway call, yet an address")
	}
}

// The ICE checks fail with the reason when no browser call can be placed,
// and the symmetric one asks for the answer before placing any.
func TestICEChecksWithoutABrowser(t *testing.T) {
	for _, id := range []string{"08-ice-srflx", "08-ice-symmetric", "08-ice-turn-off"} {
		ex, err := Find(id)
		if err != nil {
			t.Fatal(err)
		}
		b := &browserRecorder{}
		r := RunCheckAnswer(context.Background(), b, ex, time.Now(), "prflx 203.0.113.9")
		if r.Pass || !strings.Contains(r.String(), "needs root") {
			t.Errorf("%s without a browser:\n%s", id, r)
		}
		r = RunCheck(context.Background(), &recorder{}, ex, time.Now())
		if r.Pass || (id != "08-ice-symmetric" && !strings.Contains(r.String(), "no browser site")) {
			t.Errorf("%s on a lab without a browser site:\n%s", id, r)
		}
	}
	ex, _ := Find("08-ice-symmetric")
	b := &browserRecorder{}
	if r := RunCheck(context.Background(), b, ex, time.Now()); r.Pass || !strings.Contains(r.String(), ex.Symptom) || len(b.calls) != 0 {
		t.Errorf("08-ice-symmetric without an answer placed %q:\n%s", b.calls, r)
	}
}
