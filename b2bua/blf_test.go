package b2bua

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

var lampRe = regexp.MustCompile(`<state>(\w+)</state>`)

// A watcher subscribes to bob's extension (dialog event package): the lamp
// is off, blinks while alice's call rings bob, is on while they talk and
// off again after; unsubscribing ends with a terminated NOTIFY.
func TestBLFLampFollowsCalls(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	w := newRawUA(t, "127.0.9.92", "dave")
	w.target, w.callID, w.fromTag = l.pbx.LocalAddr(), "blf-"+sip.GenerateTagN(8), sip.GenerateTagN(8)
	subscribe := func(cseq int, toTag string, expires int) *sip.Response {
		return w.subscribe("101", "dialog", dialogInfoType, cseq, toTag, expires)
	}
	// lamp reads the next NOTIFY, answers it and returns the lamp state.
	lamp := func() (string, string) {
		t.Helper()
		n := w.notify("dialog", dialogInfoType)
		state := LampIdle
		if m := lampRe.FindSubmatch(n.Body()); m != nil {
			state = string(m[1])
		}
		return state, n.GetHeader("Subscription-State").Value()
	}

	res := subscribe(1, "", 600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	toTag, _ := res.To().Params.Get("tag")
	if s, _ := lamp(); s != LampIdle {
		t.Fatalf("initial lamp %s", s)
	}
	call, err := alice.Call(siptest.Ctx(t, 5*time.Second), l.dial("101"))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := lamp(); s != LampEarly {
		t.Fatalf("ringing lamp %s", s)
	}
	if _, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateRinging); err != nil {
		t.Fatal(err)
	}
	if err := bob.Answer(""); err != nil {
		t.Fatal(err)
	}
	if s, _ := lamp(); s != LampConfirmed {
		t.Fatalf("talking lamp %s", s)
	}
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s, _ := lamp(); s != LampIdle {
		t.Fatalf("lamp after hang-up %s", s)
	}
	if st := l.pbx.Status(); len(st.BLF) != 1 || st.BLF[0].User != "bob" {
		t.Fatalf("status BLF: %+v", st.BLF)
	}
	if res := subscribe(2, toTag, 0); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	if s, ss := lamp(); s != LampIdle || !strings.HasPrefix(ss, "terminated") {
		t.Fatalf("final NOTIFY: %s %s", s, ss)
	}
	if n := len(l.pbx.Status().BLF); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}
