package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siplab/siplab/uaclient"
)

// all are the training page's module 05 flows (and module 07's
// "registration with auth"), alice calling bob through both NATs and the
// proxy unless said otherwise. Each plays as a list of steps (below the
// table); the first step that fails ends the scenario.
var all = []Scenario{
	{
		Name: "basic", Title: "Basic call",
		Teaches: "INVITE → 100 Trying → 180 Ringing → 200 OK → ACK, media both ways, then BYE → 200 OK (the proxy first challenges the INVITE with 407, which its own ACK closes)",
		Expect:  ex("INVITE", "180/INVITE", "200/INVITE", "ACK", "BYE", "200/BYE"),
		Takes:   5 * time.Second,
		steps: []step{
			dial("alice", "bob"),
			callerReaches(uaclient.StateConfirmed, 15*time.Second),
			pauseFor(2 * time.Second),
			callerVerb("hangup"),
		},
	},
	{
		Name: "busy", Title: "Busy",
		Teaches: "bob rejects the ringing call with 486 Busy Here; the final response is still acknowledged: alice's ACK closes the INVITE transaction",
		Expect:  ex("INVITE", "180/INVITE", "486/INVITE", "ACK"),
		Takes:   4 * time.Second,
		steps: []step{
			setting("bob", "auto_answer", "0"),
			dial("alice", "bob"),
			calleeReaches("bob", uaclient.StateRinging, 15*time.Second),
			verb("bob", "reject", "486"),
			callerReaches(uaclient.StateTerminated, 10*time.Second),
		},
	},
	{
		Name: "cancel", Title: "Caller cancels",
		Teaches: "alice gives up while bob rings: CANCEL gets its own 200 OK, the INVITE ends with 487 Request Terminated, and alice ACKs the 487",
		Expect:  ex("INVITE", "180/INVITE", "CANCEL", "200/CANCEL", "487/INVITE", "ACK"),
		Takes:   4 * time.Second,
		steps: []step{
			setting("bob", "auto_answer", "0"),
			dial("alice", "bob"),
			calleeReaches("bob", uaclient.StateRinging, 15*time.Second),
			pauseFor(time.Second),
			callerVerb("cancel"),
		},
	},
	{
		Name: "auth", Title: "Registration with auth",
		Teaches: "REGISTER → 401 Unauthorized with a nonce → REGISTER again with Authorization (the digest of the password, never the password) → 200 OK listing the binding",
		Expect:  ex("REGISTER", "401/REGISTER", "REGISTER", "200/REGISTER"),
		Takes:   2 * time.Second,
		steps:   []step{register("alice")},
	},
	{
		Name: "hold", Title: "Hold and resume",
		Teaches: "a re-INVITE in the same dialog puts the call on hold (alice's SDP a=sendonly, bob answers a=recvonly), another re-INVITE resumes it (a=sendrecv); each is INVITE → 200 → ACK",
		Expect:  ex("INVITE", "200/INVITE", "ACK", "INVITE", "200/INVITE", "ACK", "INVITE", "200/INVITE", "ACK", "BYE", "200/BYE"),
		Takes:   7 * time.Second,
		steps: []step{
			dial("alice", "bob"),
			callerReaches(uaclient.StateConfirmed, 15*time.Second),
			pauseFor(time.Second),
			callerExec("hold"),
			pauseFor(2 * time.Second),
			callerExec("resume"),
			pauseFor(time.Second),
			callerVerb("hangup"),
		},
	},
	{
		Name: "transfer", Title: "Blind transfer",
		Teaches: "bob sends REFER (Refer-To: carol) in his dialog with alice; alice accepts (202), calls carol in a new dialog and reports progress in NOTIFYs (message/sipfrag); the first dialog ends with BYE",
		Expect:  ex("INVITE", "200/INVITE", "ACK", "REFER", "202/REFER", "INVITE", "200/INVITE", "NOTIFY", "BYE"),
		Takes:   8 * time.Second,
		steps: []step{
			dial("alice", "bob"),
			callerReaches(uaclient.StateConfirmed, 15*time.Second),
			calleeReaches("bob", uaclient.StateConfirmed, 5*time.Second),
			pauseFor(time.Second),
			exec("bob", "transfer", "carol"),
			followTransferTo("carol"),
			callerReaches(uaclient.StateConfirmed, 15*time.Second),
			pauseFor(time.Second),
			callerVerb("hangup"),
		},
	},
	{
		Name: "mismatch", Title: "Codec mismatch",
		Teaches: "alice offers only PCMU (m=audio … 0), bob accepts only PCMA: no codec in common, so 488 Not Acceptable Here, ACKed like any final response",
		Expect:  ex("INVITE", "488/INVITE", "ACK"),
		Takes:   3 * time.Second,
		steps: []step{
			setting("alice", "codecs", "pcmu"),
			setting("bob", "codecs", "pcma"),
			dial("alice", "bob"),
			callerReaches(uaclient.StateTerminated, 15*time.Second),
		},
	},
	{
		Name: "no-ack", Title: "Lost ACK",
		Teaches: "alice's ACK never arrives (`ack drop`, as a NAT eating it would): bob retransmits his 200 OK at 0.5, 1, 2, 4, 4… s and after 32 s gives up and hangs up with BYE — repeated 200 OKs in a trace mean the ACK is not getting through",
		Expect:  []Expect{{Msg: "INVITE"}, {Msg: "200/INVITE", Times: 4}, {Msg: "BYE"}, {Msg: "200/BYE"}},
		Takes:   36 * time.Second,
		steps: []step{
			setting("alice", "ack", "drop"),
			dial("alice", "bob"),
			callerReaches(uaclient.StateConfirmed, 15*time.Second),
			note("… bob retransmits his 200 OK for 32 s (64×T1), then hangs up"),
			callerReaches(uaclient.StateTerminated, 45*time.Second),
		},
	},
}

func ex(msgs ...string) []Expect {
	out := make([]Expect, len(msgs))
	for i, m := range msgs {
		out[i] = Expect{Msg: m}
	}
	return out
}

// step is one action of a scenario. The steps after dial act on the
// scenario's call (env.c), as its caller (env.caller) sees it (its ID) or,
// for the callee, by its Call-ID.
type step func(ctx context.Context, e *env) error

// setting changes a phone setting until the scenario ends (env.set).
func setting(phone, name, value string) step {
	return func(ctx context.Context, e *env) error { return e.set(ctx, phone, name, value) }
}

// dial places the scenario's call.
func dial(from, to string) step {
	return func(ctx context.Context, e *env) error {
		c, err := e.call(ctx, from, to)
		e.caller, e.c = from, c
		return err
	}
}

// callerReaches waits until the caller's call reaches state.
func callerReaches(state uaclient.CallState, timeout time.Duration) step {
	return func(ctx context.Context, e *env) error {
		_, err := e.wait(ctx, e.caller, e.c.ID, state, timeout)
		return err
	}
}

// calleeReaches waits until phone's side of the call reaches state.
func calleeReaches(phone string, state uaclient.CallState, timeout time.Duration) step {
	return func(ctx context.Context, e *env) error {
		_, err := e.wait(ctx, phone, e.c.CallID, state, timeout)
		return err
	}
}

// pauseFor lets media flow (pause).
func pauseFor(d time.Duration) step {
	return func(ctx context.Context, e *env) error { return pause(ctx, d) }
}

// callerVerb runs a call verb (hangup, cancel) on the caller's call.
func callerVerb(v string) step {
	return func(ctx context.Context, e *env) error {
		_, err := e.verb(ctx, e.caller, v, e.c.ID)
		return err
	}
}

// verb runs a call verb with fixed arguments (bob's "reject 486").
func verb(phone, v string, args ...string) step {
	return func(ctx context.Context, e *env) error {
		_, err := e.verb(ctx, phone, v, args...)
		return err
	}
}

// callerExec runs a phone command (hold, resume) on the caller's call.
func callerExec(cmd string) step {
	return func(ctx context.Context, e *env) error {
		e.say("siplab exec " + e.caller + " " + cmd)
		return e.phone(ctx, e.caller, nil, cmd, e.c.ID)
	}
}

// exec runs a phone command with its arguments.
func exec(phone string, args ...string) step {
	return func(ctx context.Context, e *env) error {
		e.say("siplab exec " + phone + " " + strings.Join(args, " "))
		return e.phone(ctx, phone, nil, args...)
	}
}

// note prints what the scenario is waiting for.
func note(text string) step {
	return func(ctx context.Context, e *env) error {
		fmt.Fprintln(e.out, "  "+text)
		return nil
	}
}

// register registers phone again; its REGISTER dialog is the scenario's.
func register(phone string) step {
	return func(ctx context.Context, e *env) error {
		e.say("siplab exec " + phone + " register")
		var st uaclient.RegStatus
		if err := e.phone(ctx, phone, &st, "register"); err != nil {
			return err
		}
		if st.CallID == "" {
			return fmt.Errorf("%s's registration has no Call-ID", phone)
		}
		e.res.CallIDs = append(e.res.CallIDs, st.CallID)
		return nil
	}
}

// followTransferTo makes the caller's newest call, the one the REFER to
// target made, the scenario's call.
func followTransferTo(target string) step {
	return func(ctx context.Context, e *env) error {
		var st uaclient.Status
		if err := e.phone(ctx, e.caller, &st, "status"); err != nil {
			return err
		}
		var nc *uaclient.CallStatus
		for i := range st.Calls {
			if st.Calls[i].CallID != e.c.CallID {
				nc = &st.Calls[i]
			}
		}
		if nc == nil {
			return fmt.Errorf("%s placed no call to %s after the REFER", e.caller, target)
		}
		e.res.CallIDs = append(e.res.CallIDs, nc.CallID)
		e.c = *nc
		return nil
	}
}
