package doctor

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/ladder"
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
	var ev []Evidence
	for _, v := range c.MediaVerdict() {
		if strings.Contains(v, "one-way") {
			iface, _, _ := strings.Cut(v, ":")
			ev = append(ev, Evidence{Iface: iface, What: strings.TrimSpace(v[len(iface)+1:])})
		}
	}
	if len(ev) == 0 {
		return nil
	}
	return []Finding{{Severity: Error,
		Summary:  fmt.Sprintf("one-way audio: at %d capture point(s) RTP flows in one direction only", len(ev)),
		Fix:      "the silent direction is sent to an address from the SDP: look for a private c= (rule private-sdp) or a symmetric-RTP/latching mismatch",
		Evidence: ev}}
}
