package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/siplab/siplab/uaclient"
)

// all are the training page's module 05 flows (and module 07's
// "registration with auth"), alice calling bob through both NATs and the
// proxy unless said otherwise.
var all = []Scenario{
	{
		Name: "basic", Title: "Basic call",
		Teaches: "INVITE → 100 Trying → 180 Ringing → 200 OK → ACK, media both ways, then BYE → 200 OK (the proxy first challenges the INVITE with 407, which its own ACK closes)",
		Expect:  ex("INVITE", "180/INVITE", "200/INVITE", "ACK", "BYE", "200/BYE"),
		Takes:   5 * time.Second,
		play: func(ctx context.Context, e *env) error {
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "alice", c.ID, uaclient.StateConfirmed, 15*time.Second); err != nil {
				return err
			}
			if err := pause(ctx, 2*time.Second); err != nil {
				return err
			}
			_, err = e.verb(ctx, "alice", "hangup", c.ID)
			return err
		},
	},
	{
		Name: "busy", Title: "Busy",
		Teaches: "bob rejects the ringing call with 486 Busy Here; the final response is still acknowledged: alice's ACK closes the INVITE transaction",
		Expect:  ex("INVITE", "180/INVITE", "486/INVITE", "ACK"),
		Takes:   4 * time.Second,
		play: func(ctx context.Context, e *env) error {
			if err := e.set(ctx, "bob", "auto_answer", "0"); err != nil {
				return err
			}
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "bob", c.CallID, uaclient.StateRinging, 15*time.Second); err != nil {
				return err
			}
			if _, err := e.verb(ctx, "bob", "reject", "486"); err != nil {
				return err
			}
			_, err = e.wait(ctx, "alice", c.ID, uaclient.StateTerminated, 10*time.Second)
			return err
		},
	},
	{
		Name: "cancel", Title: "Caller cancels",
		Teaches: "alice gives up while bob rings: CANCEL gets its own 200 OK, the INVITE ends with 487 Request Terminated, and alice ACKs the 487",
		Expect:  ex("INVITE", "180/INVITE", "CANCEL", "200/CANCEL", "487/INVITE", "ACK"),
		Takes:   4 * time.Second,
		play: func(ctx context.Context, e *env) error {
			if err := e.set(ctx, "bob", "auto_answer", "0"); err != nil {
				return err
			}
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "bob", c.CallID, uaclient.StateRinging, 15*time.Second); err != nil {
				return err
			}
			if err := pause(ctx, time.Second); err != nil {
				return err
			}
			_, err = e.verb(ctx, "alice", "cancel", c.ID)
			return err
		},
	},
	{
		Name: "auth", Title: "Registration with auth",
		Teaches: "REGISTER → 401 Unauthorized with a nonce → REGISTER again with Authorization (the digest of the password, never the password) → 200 OK listing the binding",
		Expect:  ex("REGISTER", "401/REGISTER", "REGISTER", "200/REGISTER"),
		Takes:   2 * time.Second,
		play: func(ctx context.Context, e *env) error {
			e.say("siplab exec alice register")
			var st uaclient.RegStatus
			if err := e.phone(ctx, "alice", &st, "register"); err != nil {
				return err
			}
			if st.CallID == "" {
				return fmt.Errorf("alice's registration has no Call-ID")
			}
			e.res.CallIDs = append(e.res.CallIDs, st.CallID)
			return nil
		},
	},
	{
		Name: "hold", Title: "Hold and resume",
		Teaches: "a re-INVITE in the same dialog puts the call on hold (alice's SDP a=sendonly, bob answers a=recvonly), another re-INVITE resumes it (a=sendrecv); each is INVITE → 200 → ACK",
		Expect:  ex("INVITE", "200/INVITE", "ACK", "INVITE", "200/INVITE", "ACK", "INVITE", "200/INVITE", "ACK", "BYE", "200/BYE"),
		Takes:   7 * time.Second,
		play: func(ctx context.Context, e *env) error {
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "alice", c.ID, uaclient.StateConfirmed, 15*time.Second); err != nil {
				return err
			}
			if err := pause(ctx, time.Second); err != nil {
				return err
			}
			e.say("siplab exec alice hold")
			if err := e.phone(ctx, "alice", nil, "hold", c.ID); err != nil {
				return err
			}
			if err := pause(ctx, 2*time.Second); err != nil {
				return err
			}
			e.say("siplab exec alice resume")
			if err := e.phone(ctx, "alice", nil, "resume", c.ID); err != nil {
				return err
			}
			if err := pause(ctx, time.Second); err != nil {
				return err
			}
			_, err = e.verb(ctx, "alice", "hangup", c.ID)
			return err
		},
	},
	{
		Name: "transfer", Title: "Blind transfer",
		Teaches: "bob sends REFER (Refer-To: carol) in his dialog with alice; alice accepts (202), calls carol in a new dialog and reports progress in NOTIFYs (message/sipfrag); the first dialog ends with BYE",
		Expect:  ex("INVITE", "200/INVITE", "ACK", "REFER", "202/REFER", "INVITE", "200/INVITE", "NOTIFY", "BYE"),
		Takes:   8 * time.Second,
		play: func(ctx context.Context, e *env) error {
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "alice", c.ID, uaclient.StateConfirmed, 15*time.Second); err != nil {
				return err
			}
			if _, err := e.wait(ctx, "bob", c.CallID, uaclient.StateConfirmed, 5*time.Second); err != nil {
				return err
			}
			if err := pause(ctx, time.Second); err != nil {
				return err
			}
			e.say("siplab exec bob transfer carol")
			if err := e.phone(ctx, "bob", nil, "transfer", "carol"); err != nil {
				return err
			}
			// alice's newest call is the one the REFER made.
			var st uaclient.Status
			if err := e.phone(ctx, "alice", &st, "status"); err != nil {
				return err
			}
			var nc *uaclient.CallStatus
			for i := range st.Calls {
				if st.Calls[i].CallID != c.CallID {
					nc = &st.Calls[i]
				}
			}
			if nc == nil {
				return fmt.Errorf("alice placed no call to carol after the REFER")
			}
			e.res.CallIDs = append(e.res.CallIDs, nc.CallID)
			if _, err := e.wait(ctx, "alice", nc.ID, uaclient.StateConfirmed, 15*time.Second); err != nil {
				return err
			}
			if err := pause(ctx, time.Second); err != nil {
				return err
			}
			_, err = e.verb(ctx, "alice", "hangup", nc.ID)
			return err
		},
	},
	{
		Name: "mismatch", Title: "Codec mismatch",
		Teaches: "alice offers only PCMU (m=audio … 0), bob accepts only PCMA: no codec in common, so 488 Not Acceptable Here, ACKed like any final response",
		Expect:  ex("INVITE", "488/INVITE", "ACK"),
		Takes:   3 * time.Second,
		play: func(ctx context.Context, e *env) error {
			if err := e.set(ctx, "alice", "codecs", "pcmu"); err != nil {
				return err
			}
			if err := e.set(ctx, "bob", "codecs", "pcma"); err != nil {
				return err
			}
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			_, err = e.wait(ctx, "alice", c.ID, uaclient.StateTerminated, 15*time.Second)
			return err
		},
	},
	{
		Name: "no-ack", Title: "Lost ACK",
		Teaches: "alice's ACK never arrives (`ack drop`, as a NAT eating it would): bob retransmits his 200 OK at 0.5, 1, 2, 4, 4… s and after 32 s gives up and hangs up with BYE — repeated 200 OKs in a trace mean the ACK is not getting through",
		Expect:  []Expect{{Msg: "INVITE"}, {Msg: "200/INVITE", Times: 4}, {Msg: "BYE"}, {Msg: "200/BYE"}},
		Takes:   36 * time.Second,
		play: func(ctx context.Context, e *env) error {
			if err := e.set(ctx, "alice", "ack", "drop"); err != nil {
				return err
			}
			c, err := e.call(ctx, "alice", "bob")
			if err != nil {
				return err
			}
			if _, err := e.wait(ctx, "alice", c.ID, uaclient.StateConfirmed, 15*time.Second); err != nil {
				return err
			}
			fmt.Fprintln(e.out, "  … bob retransmits his 200 OK for 32 s (64×T1), then hangs up")
			_, err = e.wait(ctx, "alice", c.ID, uaclient.StateTerminated, 45*time.Second)
			return err
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
