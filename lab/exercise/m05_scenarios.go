package exercise

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siplab/siplab/uaclient"
)

const module05 = "05 Call flows"

// peerCall finds phone's call with callID (the proxy keeps one dialog),
// or nil.
func peerCall(st uaclient.Status, callID string) *uaclient.CallStatus {
	for i := len(st.Calls) - 1; i >= 0; i-- {
		if st.Calls[i].CallID == callID {
			c := st.Calls[i]
			return &c
		}
	}
	return nil
}

// lastOutgoing is the newest call phone placed to a peer containing to,
// since the exercise began.
func (p *Probe) lastOutgoing(ctx context.Context, phone, to string) (*uaclient.CallStatus, error) {
	calls, err := p.CallsSince(ctx, phone)
	if err != nil {
		return nil, err
	}
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Direction == uaclient.Outgoing && strings.Contains(calls[i].Peer, to) {
			c := calls[i]
			return &c, nil
		}
	}
	return nil, nil
}

// noCall is what a check says (and so an exercise's Symptom) when from
// placed no call to to since the exercise started.
func noCall(from, to string) string {
	return fmt.Sprintf("no call from %s to %s since the exercise started", from, to)
}

// requireCall is from's newest call to to since the exercise began; nil,
// with the failure recorded in r, when there is none.
func (p *Probe) requireCall(ctx context.Context, r *Result, from, to string) *uaclient.CallStatus {
	c, err := p.lastOutgoing(ctx, from, to)
	if err != nil || c == nil {
		r.require(false, "%s (%v)", noCall(from, to), err)
		return nil
	}
	return c
}

// requirePhone reads a phone's status; ok false, with the failure
// recorded in r, when it cannot be read.
func (p *Probe) requirePhone(ctx context.Context, r *Result, phone string) (st uaclient.Status, ok bool) {
	st, err := p.Phone(ctx, phone)
	return st, r.noError(err)
}

func heardTone(c *uaclient.CallStatus, hz float64) bool { return c != nil && tonesMatch(c.ToneHz, hz) }

func checkBasic(ctx context.Context, p *Probe) Result {
	r := newResult()
	c := p.requireCall(ctx, &r, "alice", "bob")
	if c == nil {
		return r
	}
	r.require(!c.Answered.IsZero(), "alice's call %s (Call-ID %s) was answered: %v", c.ID, c.CallID, !c.Answered.IsZero())
	r.require(c.State == uaclient.StateTerminated && c.EndedBy != "", "alice's call ended with a BYE (state %s, ended by %s: %s)", c.State, c.EndedBy, c.EndReason)
	bob, ok := p.requirePhone(ctx, &r, "bob")
	if !ok {
		return r
	}
	alice, _ := p.Phone(ctx, "alice")
	bc := peerCall(bob, c.CallID)
	if !r.require(bc != nil, "bob's side of the dialog (the same Call-ID): found %v", bc != nil) {
		return r
	}
	r.require(bc.State == uaclient.StateTerminated, "bob's side ended too: %s", bc.State)
	r.require(heardTone(c, bob.ToneHz), "%s", Leg{Phone: "alice", Call: c, Tone: alice.ToneHz}.HearsLine(Leg{Phone: "bob", Tone: bob.ToneHz}))
	r.require(heardTone(bc, alice.ToneHz), "%s", Leg{Phone: "bob", Call: bc, Tone: bob.ToneHz}.HearsLine(Leg{Phone: "alice", Tone: alice.ToneHz}))
	return r
}

func checkHold(ctx context.Context, p *Probe) Result {
	r := newResult()
	c := p.requireCall(ctx, &r, "alice", "bob")
	if c == nil {
		return r
	}
	if !r.require(c.State == uaclient.StateConfirmed, "alice's call %s is up: %s", c.ID, c.State) {
		return r
	}
	r.require(c.Hold == "local" || c.Hold == "both", "alice holds bob: her last SDP says a=%s (hold %q)", c.LocalDirection, c.Hold)
	bob, ok := p.requirePhone(ctx, &r, "bob")
	if !ok {
		return r
	}
	bc := peerCall(bob, c.CallID)
	if !r.require(bc != nil, "bob's side of the dialog found: %v", bc != nil) {
		return r
	}
	r.require(bc.Hold == "remote" || bc.Hold == "both", "bob sees himself held: alice's SDP says a=%s, bob answered a=%s (hold %q)", bc.RemoteDirection, bc.LocalDirection, bc.Hold)
	return r
}

func checkTransfer(ctx context.Context, p *Probe) Result {
	r := newResult()
	c := p.requireCall(ctx, &r, "alice", "101")
	if c == nil {
		return r
	}
	alice, _ := p.Phone(ctx, "alice")
	var cc *uaclient.CallStatus
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls, err := p.CallsSince(ctx, "carol")
		if !r.noError(err) {
			return r
		}
		cc = nil
		for i := len(calls) - 1; i >= 0; i-- {
			if calls[i].Direction == uaclient.Incoming {
				x := calls[i]
				cc = &x
				break
			}
		}
		if heardTone(cc, alice.ToneHz) || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !r.require(cc != nil && cc.State == uaclient.StateConfirmed, "carol has a call up since the exercise started: %v", cc != nil && cc.State == uaclient.StateConfirmed) {
		return r
	}
	r.require(heardTone(cc, alice.ToneHz), "%s", Leg{Phone: "carol", Call: cc}.HearsLine(Leg{Phone: "alice", Tone: alice.ToneHz}))
	r.require(c.State == uaclient.StateConfirmed, "alice's call %s (Call-ID %s, never changed) is still up: %s", c.ID, c.CallID, c.State)
	return r
}

func init() {
	register(&Exercise{
		ID: "05-basic", Module: module05, Title: "The basic call: INVITE, 180, 200, ACK, media, BYE",
		Task: "Place a call from alice to bob, let it run two seconds with audio both ways, and hang up. " +
			"Then read it in `siplab ladder`: every message of the basic call flow, and the RTP between them.",
		Observe: []string{"`siplab ladder`: INVITE → 100 → 180 → 200 → ACK, RTP both ways, BYE → 200.", "`siplab exec alice status` and `siplab exec bob status`: the same Call-ID on both phones.", "`siplab scenario basic`: the same flow in one command."},
		Hints:   []string{"bob answers by himself after 1 s.", "`siplab exec alice wait call-state confirmed` waits for the 200 OK."},
		Fix: []Step{
			Run("call alice bob"), RunExpect("exec alice wait call-state confirmed -timeout 10s", "confirmed: the ACK is sent"),
			Pause(2*time.Second, "audio both ways"), RunExpect("hangup alice", "BYE → 200 OK"),
		},
		Symptom: noCall("alice", "bob"),
		Pass:    "bob heard alice's",
		Check:   checkBasic,
	})
	register(&Exercise{
		ID: "05-hold", Module: module05, Title: "Hold: a re-INVITE with a=sendonly",
		Task: "Call bob from alice and put him on hold from alice's phone. Leave the call on hold and check: " +
			"alice's SDP must say she only sends, bob's phone must know it is held.",
		Observe: []string{"`siplab ladder`: the re-INVITE in the same dialog (same Call-ID, CSeq + 1) and its SDP direction.", "`siplab exec bob status`: `held by remote`.", "`siplab scenario hold`: hold and resume in one command."},
		Hints:   []string{"`siplab exec alice hold` (and `resume`); `siplab set alice hold_mode inactive` offers a=inactive instead."},
		Fix:     append(callUp("alice", "bob"), RunExpect("exec alice hold", "re-INVITE with a=sendonly, answered a=recvonly")),
		Symptom: noCall("alice", "bob"),
		Pass:    "bob sees himself held",
		Check:   checkHold,
	})
	register(&Exercise{
		ID: "05-transfer", Module: module05, Title: "Blind transfer: REFER through the PBX",
		Task: "alice calls extension 101 (bob, through the PBX). bob transfers her, blind, to 102 (carol). " +
			"carol must end up hearing alice, and alice's dialog must never change.",
		Observe: []string{"`siplab exec pbx status`: the legs before and after.", "`siplab ladder`: REFER → 202, NOTIFYs with message/sipfrag, the PBX's INVITE to carol.", "`siplab scenario transfer`: the same flow in one command."},
		Hints:   []string{"`siplab exec bob transfer 102` during the call."},
		Fix: append(callUp("alice", "101"),
			Run("exec bob wait call-state confirmed -timeout 10s"),
			RunExpect("exec bob transfer 102", "REFER → 202 Accepted; the PBX calls carol"),
			Run("exec carol wait call-state confirmed -timeout 15s"),
		),
		Symptom: noCall("alice", "101"),
		Pass:    "carol heard alice's",
		Check:   checkTransfer,
	})
}
