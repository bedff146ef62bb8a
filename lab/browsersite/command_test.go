package browsersite

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/webphone/headless"
)

// noLab fails every command: the argument errors below come before any
// namespace, browser or lab is touched.
type noLab struct{}

func (noLab) Exec(context.Context, string, ...string) ([]byte, error) {
	panic("the lab was used for a bad command line")
}

func TestCommandRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "want `webphone call"},
		{[]string{"dial", "dave", "bob"}, "want `webphone call"},
		{[]string{"call", "dave"}, "want a user and a target"},
		{[]string{"call", "dave", "bob", "carol"}, "want a user and a target"},
		{[]string{"call", "dave", "bob", "-policy", "none"}, `-policy "none"`},
		{[]string{"call", "-hold", "soon", "dave", "bob"}, "invalid value"},
	} {
		err := Command(context.Background(), noLab{}, tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestPageURL(t *testing.T) {
	if got, want := PageURL("dave", "bob", ""), PhoneURL+"?user=dave&target=bob"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	if got := PageURL("dave", "bob", "relay"); !strings.HasSuffix(got, "&policy=relay") {
		t.Errorf("%s: no policy", got)
	}
}

// A call with no audio says why in one line: what the doctor would say.
func TestReportWhy(t *testing.T) {
	none := Report{Outcome: Outcome{Page: headless.State{ICE: "new"}}, Gateway: &webrtcgw.Stats{ICE: "new"}}
	if got := none.Why(); !strings.Contains(got, "no candidates at all") || !strings.Contains(got, "gateway ICE new") {
		t.Errorf("no candidates: %s", got)
	}
	host := Report{Outcome: Outcome{Page: headless.State{ICE: "failed", Candidates: []headless.Candidate{{Side: "local", Type: "host", Address: "192.168.9.10:5000"}}}}}
	if got := host.Why(); !strings.Contains(got, "host candidates only") || !strings.Contains(got, "no selected pair") {
		t.Errorf("host only: %s", got)
	}
	var b bytes.Buffer
	host.Write(&b)
	if !strings.Contains(b.String(), "local  candidate host  192.168.9.10:5000") || !strings.Contains(b.String(), "gateway: no call") {
		t.Errorf("report:\n%s", b.String())
	}
}

// A second browser call while one runs is refused at once, and the lock
// is free again afterwards.
func TestOneCallAtATime(t *testing.T) {
	unlock, err := oneAtATime()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Call(context.Background(), CallOptions{User: "dave", Target: "bob"}, nil); !errors.Is(err, ErrBusy) {
		t.Errorf("a second call while one runs: %v, want ErrBusy", err)
	}
	unlock()
	again, err := oneAtATime()
	if err != nil {
		t.Fatalf("the lock after unlock: %v", err)
	}
	again()
}
