package uaclient

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ack drop loses our ACK for the 2xx: the callee retransmits its 200 OK
// and, after 64*T1 without an ACK, hangs up with BYE (RFC 3261 §13.3.1.4).
// ack send again: the next call is ACKed and stays up.
func TestACKDropRepeats200ThenBYE(t *testing.T) {
	// Shorter RFC 3261 timers so 64*T1 is 3.2 s, not 32 s.
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	t.Cleanup(func() { sip.SetTimers(500*time.Millisecond, 4*time.Second, 5*time.Second) })
	alice, bob := pair(t, nil, func(c *Config) { c.Settings = map[string]string{"auto_answer": "0"} })
	ctx := testCtx(t)
	must(t, alice.Set("ack", "drop"))
	c, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	in := waitCall(t, bob, "", StateRinging)
	must(t, bob.Answer(in.ID))
	if st := waitCall(t, alice, c.id, StateConfirmed); st.State != StateConfirmed {
		t.Fatalf("alice: %+v", st)
	}
	end := waitCall(t, bob, in.ID, StateTerminated)
	if end.EndedBy != "local" && end.EndReason == "" {
		t.Fatalf("bob's call ended oddly: %+v", end)
	}
	if st := waitCall(t, alice, c.id, StateTerminated); st.EndReason != "BYE received" {
		t.Fatalf("alice's call should end by bob's BYE: %+v", st)
	}
	t.Logf("bob: %s (%s)", end.EndReason, end.MediaError)

	must(t, alice.Set("ack", "send"))
	c2, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's second call", func() bool { return len(bob.Status().Calls) == 2 })
	in2 := waitCall(t, bob, bob.Status().Calls[1].ID, StateRinging)
	must(t, bob.Answer(in2.ID))
	waitCall(t, alice, c2.id, StateConfirmed)
	time.Sleep(4 * time.Second)
	if st, _ := bob.CallStatus(in2.ID); st.State != StateConfirmed {
		t.Fatalf("with ack send the call should stay up: %+v", st)
	}
}
