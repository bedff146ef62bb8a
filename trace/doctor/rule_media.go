package doctor

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
)

// Module 01: a call that sets up with missing audio is a media problem.
// The rule looks at each capture point: RTP in one direction only, or none
// at all for an answered call.
func init() {
	register(Rule{Name: "media", Title: "one-way or no RTP in an answered call", Check: checkMedia})
}

func answered(c *ladder.Call) (int, bool) {
	for i, m := range c.Messages {
		if !m.Request && m.Method == "INVITE" && m.Status/100 == 2 {
			return i, true
		}
	}
	return 0, false
}

func checkMedia(c *ladder.Call) []Finding {
	i, ok := answered(c)
	if !ok {
		return nil
	}
	if len(c.Streams) == 0 {
		return []Finding{{Severity: Error,
			Summary:  "the call was answered but no RTP for its SDP ports crossed any capture point",
			Fix:      "read c= and m= on both sides (siplab explain); check the phones' media statistics (siplab exec <phone> status)",
			Evidence: []Evidence{{N: i + 1, Iface: c.Messages[i].Iface, What: c.Messages[i].Label + " answered the call"}}}}
	}
	// Hold (sendonly/inactive) and a recording voicemail (recvonly) ask
	// for audio one way: one-way RTP is what the SDP agreed.
	if oneWayAgreed(c) != "" {
		return nil
	}
	// Audio is one-way between two nodes when RTP went from one to the
	// other at some capture point and nothing came back at any: the two
	// directions of one hop may cross different wires (the PBX sends to
	// the SBC over the core, the SBC answers over the internet), so a
	// single point's view is not the verdict.
	type pair struct{ a, b string }
	pkts := map[pair]int{}
	where := map[pair][]string{}
	var order []pair
	for _, s := range c.Streams {
		k := pair{s.Sender.Name(), s.Receiver.Name()}
		if pkts[k] == 0 {
			order = append(order, k)
		}
		pkts[k] += s.Packets
		for _, p := range s.Seen {
			if !containsStr(where[k], p) {
				where[k] = append(where[k], p)
			}
		}
	}
	var ev []Evidence
	for _, k := range order {
		if pkts[pair{k.b, k.a}] > 0 || k.a == k.b {
			continue
		}
		ev = append(ev, Evidence{Iface: strings.Join(where[k], ","), What: fmt.Sprintf("one-way, %s → %s %d packets, nothing back at any capture point", k.a, k.b, pkts[k])})
	}
	return withEvidence(Finding{Severity: Error,
		Summary:  fmt.Sprintf("one-way audio: on %d hop(s) RTP flows in one direction only", len(ev)),
		Fix:      "the silent direction is sent to an address from the SDP: look for a private c= (rule private-sdp) or a symmetric-RTP/latching mismatch",
		Evidence: ev})
}

// oneWayAgreed returns the first SDP direction attribute of the call that
// asks for audio in one direction or none ("a=sendonly"), "" when every
// offer and answer is sendrecv.
func oneWayAgreed(c *ladder.Call) string {
	for _, m := range c.Messages {
		for _, l := range sdpLines(m) {
			switch l {
			case "a=sendonly", "a=recvonly", "a=inactive":
				return l
			}
		}
	}
	return ""
}

// mediaFailed reports whether the call's audio failed at some capture
// point (no RTP for an answered call, or one-way where the SDP agreed on
// two-way): what turns a lie in the SDP from a note into an error.
func mediaFailed(c *ladder.Call) bool { return len(checkMedia(c)) > 0 }
