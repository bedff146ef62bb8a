package b2bleg_test

import (
	"sync"
	"testing"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// TestEndLockedOnce: of two ends, only the first records who ended the
// call and terminates its legs; the second changes nothing.
func TestEndLockedOnce(t *testing.T) {
	type callState string
	var mu sync.Mutex
	l := b2bleg.New(b2bleg.Config{Lock: &mu, Out: &owner{}, Name: "a"}, sipdialog.Dialog{})
	l.State = b2bleg.Confirmed
	state := callState("answered")
	var times b2bleg.Times
	if !b2bleg.EndLocked(&state, "ended", &times, "caller", "BYE", l, nil) {
		t.Fatal("first end reported the call already ended")
	}
	if state != "ended" || times.Ended.IsZero() || times.EndedBy != "caller" || times.EndReason != "BYE" || l.State != b2bleg.Terminated {
		t.Fatalf("after the first end: state %q, times %+v, leg %v", state, times, l.State)
	}
	first := times
	if b2bleg.EndLocked(&state, "ended", &times, "callee", "BYE", l) {
		t.Fatal("second end reported that it ended the call")
	}
	if times != first {
		t.Fatalf("second end changed the timeline: %+v, was %+v", times, first)
	}
}
