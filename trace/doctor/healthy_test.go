package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/ladder"
)

// The healthy lab (testdata/captures/healthy, recorded from the real lab by
// its record.sh): 10+ minutes of every kind of call the lab offers and the
// traffic that keeps it alive. The doctor finds no error and no warning in
// it. The test first checks the recording holds what it claims, so a
// fixture that lost its SBC call or its pings cannot pass by being empty.
func TestHealthyLabIsClean(t *testing.T) {
	all := calls(t, "healthy")
	var start, end time.Time
	kinds := map[string]int{}
	var invites, sbcLegs, pbxCalls, trunkCalls int
	hold, transfer, turn := false, false, false
	for _, c := range all {
		if start.IsZero() || c.Start.Before(start) {
			start = c.Start
		}
		if c.End.After(end) {
			end = c.End
		}
		kinds[c.Kind()]++
		if !c.IsInvite() {
			continue
		}
		invites++
		nodes := map[string]int{}
		for _, col := range c.Columns {
			nodes[col.Title()]++
		}
		if nodes["sbc"] > 0 && len(c.Legs) >= 3 {
			sbcLegs++
		}
		if nodes["pbx"] > 0 {
			pbxCalls++
		}
		// Out to the carrier, or in from it (its own leg is TLS: the call
		// shows from the SBC on, from a PSTN number).
		if nodes["carrier"] > 0 || strings.HasPrefix(c.Legs[0].From, "+") {
			trunkCalls++
		}
		if nodes["stun"] > 0 {
			turn = true
		}
		for _, m := range c.Messages {
			if m.Request && m.Method == "REFER" {
				transfer = true
			}
			if m.SDP && strings.Contains(string(m.Payload), "a=sendonly") {
				hold = true
			}
		}
	}
	if d := end.Sub(start); d < 10*time.Minute {
		t.Errorf("the recording spans %s, want 10 minutes or more", d)
	}
	if invites < 8 || sbcLegs < 2 || pbxCalls < 3 || trunkCalls < 2 || !hold || !transfer || !turn {
		t.Errorf("recording: %d calls, %d through the SBC with 3+ legs, %d through the PBX, %d over the trunk, hold %v, transfer %v, TURN %v",
			invites, sbcLegs, pbxCalls, trunkCalls, hold, transfer, turn)
	}
	if kinds["OPTIONS"] < 30 || kinds["REGISTER"] < 3 {
		t.Errorf("dialogs by kind %v: want 30+ OPTIONS pings and the registrations", kinds)
	}

	found := Diagnose(all, all)
	notes := map[string]int{}
	for _, f := range found {
		if f.Severity >= Warning {
			about := "grouped"
			if f.Call != nil {
				about = f.Call.Kind() + " " + f.Call.ID
			}
			t.Errorf("%s [%s] %s: %s %v", f.Severity, f.Rule, about, f.Summary, f.Evidence)
			continue
		}
		notes[f.Rule]++
	}
	// The scanner's sweep is one note, however many requests it made.
	if notes["scanner"] != 1 {
		t.Errorf("%d scanner notes, want 1 (the sweep, grouped): %v", notes["scanner"], notes)
	}
}

// Pings are never one finding each: a peer that stopped answering is one
// grouped error however many pings it missed.
func TestKeepaliveGrouped(t *testing.T) {
	all := calls(t, "healthy")
	var pings []*ladder.Call
	for _, c := range all {
		if c.Kind() == "OPTIONS" && !scanner(c) {
			pings = append(pings, c)
		}
	}
	if len(pings) < 10 {
		t.Fatalf("%d pings in the healthy fixture", len(pings))
	}
	// Drop every answer: each pinger/peer pair becomes one error.
	var silent []*ladder.Call
	pairs := map[string]bool{}
	for _, c := range pings {
		cp := *c
		cp.Messages = nil
		for _, m := range c.Messages {
			if m.Request {
				cp.Messages = append(cp.Messages, m)
			}
		}
		silent = append(silent, &cp)
		pairs[cp.Messages[0].Sender.Name()+">"+peerOf(&cp, cp.Messages[0])] = true
	}
	found := checkKeepalive(silent)
	if len(found) != len(pairs) {
		t.Fatalf("%d findings for %d pings between %d pairs, want one per pair", len(found), len(silent), len(pairs))
	}
	for _, f := range found {
		if f.Severity != Error || f.Count < 2 {
			t.Errorf("%s count %d: %s", f.Severity, f.Count, f.Summary)
		}
	}
}
