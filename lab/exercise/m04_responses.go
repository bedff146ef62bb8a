package exercise

import (
	"context"
	"fmt"
	"slices"
)

// responseCodes are the final responses module 04 asks for, each with the
// way the lab produces it.
var responseCodes = []struct {
	code int
	name string
	how  string
}{
	{486, "Busy Here", "bob rejects a ringing call"},
	{603, "Decline", "bob declines a ringing call"},
	{404, "Not Found", "a user the registrar does not know"},
	{480, "Temporarily Unavailable", "a known user with no registration"},
	{487, "Request Terminated", "alice cancels while it rings"},
	{488, "Not Acceptable Here", "no codec in common"},
}

func checkResponses(ctx context.Context, p *Probe) Result {
	r := newResult()
	calls, err := p.CallsSince(ctx, "alice")
	if err != nil {
		r.require(false, "read alice's calls: %v", err)
		return r
	}
	for _, want := range responseCodes {
		found := false
		for _, c := range calls {
			if c.Direction == "outgoing" && c.Code == want.code {
				r.require(true, "%d %s: alice's call %s to %s ended with %d %s", want.code, want.name, c.ID, c.Peer, c.Code, c.Reason)
				found = true
				break
			}
		}
		if !found {
			r.require(false, "%d %s: none of alice's %d calls since the start ended with it (%s)", want.code, want.name, len(calls), want.how)
		}
	}
	return r
}

func init() {
	register(&Exercise{
		ID:     "04-responses",
		Module: "04 Responses",
		Title:  "One call for each final response",
		Task: "Make alice's calls end with each of these final responses: " + codesList() + ". " +
			"Each needs one command on top of `siplab call` (and some a setting). The check reads alice's call list: the code each call ended with.",
		Observe: []string{
			"`siplab exec alice status`: every call line ends with its state and final code.",
			"`siplab ladder` / `siplab doctor` after each call: the response and who sent it (the phone, the proxy or the registrar's data).",
		},
		Hints: []string{
			"bob answers by himself after 1 s: `siplab set bob auto_answer 0` makes him ring until you act (`siplab reject bob 486`).",
			"404 and 480 come from the proxy: one user does not exist, the other exists but has no binding (`siplab exec carol unregister`).",
			"487 is the INVITE's answer after a CANCEL (`siplab cancel alice` while bob rings).",
			"488: `siplab set bob codecs pcma` and `siplab set alice codecs pcmu`.",
		},
		Fix: slices.Concat(
			[]Step{RunExpect("set bob auto_answer 0", "bob rings until told what to do")},
			aliceRingsBob(), aliceEnds("reject bob 486", "alice's call ends: 486 Busy Here"),
			aliceRingsBob(), aliceEnds("reject bob 603", "603 Decline"),
			aliceEnds("call alice nobody", "404 Not Found: no such user"),
			[]Step{RunExpect("exec carol unregister", "carol has no binding")},
			aliceEnds("call alice carol", "480 Temporarily Unavailable"),
			[]Step{Run("exec carol register")},
			aliceRingsBob(), aliceEnds("cancel alice", "487 Request Terminated"),
			[]Step{Run("set bob auto_answer 1s"), Run("set bob codecs pcma"), Run("set alice codecs pcmu")},
			aliceEnds("call alice bob", "488 Not Acceptable Here: no codec in common"),
		),
		Symptom: "486 Busy Here: none of alice's",
		Pass:    "488 Not Acceptable Here: alice's call",
		Check:   checkResponses,
	})
}

func codesList() string {
	s := ""
	for i, c := range responseCodes {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", c.code, c.name)
	}
	return s
}
