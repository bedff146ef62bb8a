package exercise

import (
	"context"
	"slices"
	"strings"

	"github.com/siplab/siplab/uaclient"
)

func checkMethods(ctx context.Context, p *Probe) Result {
	r := newResult()
	bob, ok := p.requirePhone(ctx, &r, "bob")
	if !ok {
		return r
	}
	var msg *uaclient.MessageRecord
	for i := range bob.Messages {
		m := bob.Messages[i]
		if m.Direction == "in" && strings.Contains(m.From, "alice") && !m.Time.Before(p.Since) {
			msg = &m
		}
	}
	if msg != nil {
		r.require(true, "MESSAGE: bob received %q from alice (answered %d)", msg.Text, msg.Code)
	} else {
		r.require(false, "MESSAGE: bob received no text from alice since the exercise started")
	}
	calls, err := p.CallsSince(ctx, "bob")
	if !r.noError(err) {
		return r
	}
	info, prack := "", ""
	for _, c := range calls {
		if c.DTMFInfoReceived != "" {
			info = c.DTMFInfoReceived
		}
		if len(c.Prack) > 0 {
			prack = strings.Join(c.Prack, "; ")
		}
	}
	r.require(info != "", "INFO: digits bob received as SIP INFO (not RTP): %q", info)
	r.require(prack != "", "PRACK: bob's reliable provisional responses: %s", orNone(prack))
	return r
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func init() {
	register(&Exercise{
		ID: "03-methods", Module: "03 Methods", Title: "Beyond INVITE and BYE: MESSAGE, INFO, PRACK, UPDATE",
		Task: "Send bob a text (MESSAGE); then call him with reliable provisional responses required (PRACK), " +
			"send him DTMF as SIP INFO instead of RTP, refresh the session with UPDATE, and hang up. The check reads bob's phone.",
		Observe: []string{
			"`siplab exec bob status`: messages, `dtmf (INFO)` digits and the `prack` lines of the call.",
			"`siplab ladder`: MESSAGE → 200; INVITE with Require: 100rel, 180 with RSeq, PRACK → 200; INFO → 200; UPDATE → 200.",
		},
		Hints: []string{
			"`siplab exec alice message bob hello`.",
			"`siplab set alice 100rel require` before the call; `siplab set alice dtmf_mode info` before `siplab dtmf alice 42`; `siplab exec alice update` during the call.",
		},
		Fix: slices.Concat(
			[]Step{
				RunExpect("exec alice message bob hello", "200 OK"),
				RunExpect("set alice 100rel require", "alice's INVITEs carry Require: 100rel"),
				Run("set alice dtmf_mode info"),
			},
			callUp("alice", "bob"),
			[]Step{
				RunExpect("dtmf alice 42", "two INFOs with application/dtmf-relay"),
				RunExpect("exec alice update", "UPDATE → 200 OK"),
				Run("hangup alice"),
			},
		),
		Symptom: "MESSAGE: bob received no text from alice",
		Pass:    "PRACK: bob's reliable provisional responses",
		Check:   checkMethods,
	})
}
