package exercise

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/siptext"
)

// flowLabel names a SIP message the way a ladder does: the method of a
// request ("INVITE", "INVITE+auth" when it carries credentials), the code
// and CSeq method of a response ("407 INVITE").
func flowLabel(msg []byte) string {
	first, _, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(first))
	if len(f) < 2 {
		return "?"
	}
	if strings.HasPrefix(f[0], "SIP/") {
		cseq := strings.Fields(siptext.Header(msg, "CSeq"))
		m := ""
		if len(cseq) == 2 {
			m = cseq[1]
		}
		return f[1] + " " + m
	}
	if f[0] == "INVITE" && (siptext.Header(msg, "Proxy-Authorization") != "" || siptext.Header(msg, "Authorization") != "") {
		return "INVITE+auth"
	}
	return f[0]
}

// flow is every SIP message of callID seen at iface in file, as labels.
func flow(file, iface, callID string) ([]string, error) {
	tr, err := capture.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pk := range tr.SIP {
		if pk.Iface == iface && pk.Header("Call-ID") == callID {
			out = append(out, flowLabel(pk.Payload))
		}
	}
	return out, nil
}

// subsequence reports whether want appears in got in order (other
// messages — 100 Trying, retransmissions — may come between).
func subsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// checkFlow passes when alice's newest call to target since the start
// crossed router-a's WAN side with the messages want, in order.
func checkFlow(target string, want ...string) func(ctx context.Context, p *Probe) Result {
	return func(ctx context.Context, p *Probe) Result {
		r := newResult()
		c := p.requireCall(ctx, &r, "alice", target)
		if c == nil {
			return r
		}
		file := filepath.Join(p.Lab.CaptureDir(), "router-a.pcapng")
		var got []string
		var err error
		for deadline := time.Now().Add(3 * time.Second); ; {
			if got, err = flow(file, "router-a/wan", c.CallID); err != nil {
				r.require(false, "read %s: %v", file, err)
				return r
			}
			if subsequence(got, want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		r.add("     alice's call %s (Call-ID %s) ended %d %s", c.ID, c.CallID, c.Code, c.Reason)
		r.require(subsequence(got, want), "on router-a/wan: %s (expected in order: %s)", strings.Join(got, ", "), strings.Join(want, ", "))
		return r
	}
}

// flowExercise is the call-flow exercise name ("05-"+name): it points at
// the ladder and at `siplab scenario name`, which plays the same flow in
// one command, and passes when alice's newest call to bob crossed
// router-a's WAN side with the messages flow, in order. ex holds the rest.
func flowExercise(name string, flow []string, ex Exercise) *Exercise {
	ex.ID, ex.Module = "05-"+name, module05
	ex.Observe = append([]string{
		"`siplab ladder`: the call's messages at every capture point; `siplab explain` for any one of them.",
		"`siplab scenario " + name + "` plays the same flow in one command and prints its ladder.",
	}, ex.Observe...)
	ex.Symptom = noCall("alice", "bob")
	ex.Pass = fmt.Sprintf("expected in order: %s)", strings.Join(flow, ", "))
	ex.Check = checkFlow("bob", flow...)
	return &ex
}

func init() {
	register(flowExercise("auth",
		[]string{"INVITE", "407 INVITE", "ACK", "INVITE+auth", "200 INVITE", "ACK", "BYE", "200 BYE"},
		Exercise{
			Title: "The authenticated call: INVITE, 407, ACK, INVITE with credentials",
			Task: "Call bob from alice and hang up. The proxy challenges every call from its own domain: read the first INVITE, its 407 " +
				"(Proxy-Authenticate with a nonce), the ACK that ends that transaction, and the second INVITE with Proxy-Authorization.",
			Hints: []string{"Same Call-ID, CSeq + 1: the retried INVITE is a new transaction in the same call."},
			Fix:   append(callUp("alice", "bob"), Pause(time.Second, ""), Run("hangup alice")),
		}))
	register(flowExercise("busy",
		[]string{"INVITE+auth", "180 INVITE", "486 INVITE", "ACK"},
		Exercise{
			Title: "Busy: 486 and its ACK",
			Task:  "Make bob's phone ring and reject the call as busy. Read the flow: a final error response is ACKed by the caller too, in the INVITE transaction.",
			Hints: []string{"`siplab set bob auto_answer 0`, then `siplab reject bob 486` while it rings."},
			Fix:   slices.Concat([]Step{Run("set bob auto_answer 0")}, aliceRingsBob(), aliceEnds("reject bob 486", "486 Busy Here")),
		}))
	register(flowExercise("cancel",
		[]string{"INVITE+auth", "180 INVITE", "CANCEL", "200 CANCEL", "487 INVITE", "ACK"},
		Exercise{
			Title: "Cancel: CANCEL, 200, 487, ACK",
			Task:  "Call bob and give up while it rings. Read the two transactions: the CANCEL's own 200 OK, and the INVITE's 487 with its ACK.",
			Hints: []string{"`siplab set bob auto_answer 0`, `siplab call alice bob`, `siplab cancel alice`."},
			Fix:   slices.Concat([]Step{Run("set bob auto_answer 0")}, aliceRingsBob(), aliceEnds("cancel alice", "487 Request Terminated")),
		}))
	register(flowExercise("mismatch",
		[]string{"INVITE+auth", "488 INVITE", "ACK"},
		Exercise{
			Title:   "Codec mismatch: 488 Not Acceptable Here",
			Task:    "Give alice and bob no codec in common and call. Read the offer (m=audio … 0 101) and why bob answers 488 without ringing.",
			Observe: []string{"`siplab exec alice status`: the call's end reason."},
			Hints:   []string{"`siplab set bob codecs pcma` and `siplab set alice codecs pcmu`."},
			Fix: append([]Step{Run("set bob codecs pcma"), Run("set alice codecs pcmu")},
				aliceEnds("call alice bob", "488 Not Acceptable Here")...),
		}))
}

// checkAckArrives places a probe call and reads router-a's WAN side: the
// ACK for bob's 200 OK must cross it, and bob must not need to repeat his
// 200 OK more than a retransmission race explains.
func checkAckArrives(ctx context.Context, p *Probe) Result {
	r := newResult()
	res := p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{})
	if res.Caller.Call == nil || !res.Connected {
		return r
	}
	got, err := flow(filepath.Join(p.Lab.CaptureDir(), "router-a.pcapng"), "router-a/wan", res.Caller.Call.CallID)
	if err != nil {
		r.require(false, "read router-a's capture: %v", err)
		return r
	}
	oks, acks := 0, 0
	for _, g := range got {
		switch g {
		case "200 INVITE":
			oks++
		case "ACK":
			acks++
		}
	}
	// The first ACK in the flow may be the one for the 407.
	authACK := 0
	if subsequence(got, []string{"407 INVITE", "ACK"}) {
		authACK = 1
	}
	r.add("     on router-a/wan: %s", strings.Join(got, ", "))
	if acks > authACK {
		r.require(true, "alice's ACK crossed router-a (%d×) for bob's 200 OK", acks-authACK)
	} else {
		r.require(false, "no ACK from alice crossed router-a for bob's 200 OK")
	}
	r.require(oks <= 2, "bob sent his 200 OK %d time(s): more means the ACK does not reach him", oks)
	return r
}

func init() {
	register(&Exercise{
		ID: "05-no-ack", Module: module05, Title: "Lost ACK: the repeated 200 OK",
		Task: "Calls from alice connect, then drop after about 32 s. Find what is missing from the three-way handshake in the trace, and fix it. " +
			"(`siplab scenario no-ack` plays the whole 32 s story in one command.)",
		Setup: []Step{RunExpect("set alice ack drop", "alice withholds the ACK for a 2xx, as if a NAT lost it")},
		Observe: []string{
			"`siplab call alice bob`, `siplab ladder`: bob's 200 OK repeated at 0.5, 1, 2, 4 s… and no ACK from alice; after 32 s bob gives up with BYE.",
			"`siplab exec bob status`: the call's end reason.",
		},
		Hints:   []string{"A UAS retransmits its 2xx until the ACK arrives (RFC 3261 §13.3.1.4). Who should send the ACK, and does it?"},
		Fix:     []Step{RunExpect("set alice ack send", "alice ACKs the 200 OK")},
		Symptom: "no ACK from alice crossed router-a",
		Pass:    "alice's ACK crossed router-a",
		Check:   checkAckArrives,
	})
}
