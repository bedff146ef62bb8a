package doctor

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
)

// Module 06: no codec in common is answered 488 Not Acceptable Here. The
// evidence is the 488 and the m= lines of the offer it answers.
func init() {
	register(Rule{Name: "codec-mismatch", Title: "488 Not Acceptable Here (no codec in common)", Check: checkCodec})
}

func checkCodec(c *ladder.Call) []Finding {
	var ev []Evidence
	seen := map[string]bool{}
	for i, m := range c.Messages {
		if m.Request || m.Status != 488 || seen[m.Iface] {
			continue
		}
		seen[m.Iface] = true
		ev = append(ev, Evidence{N: i + 1, Iface: m.Iface, What: m.Label})
	}
	if len(ev) == 0 {
		return nil
	}
	// The offers: each distinct m= line of the INVITEs' SDP, to compare
	// with what the callee accepts.
	offers := map[string]bool{}
	for i, m := range c.Messages {
		if !m.Request || m.Method != "INVITE" {
			continue
		}
		for _, l := range sdpLines(m) {
			if strings.HasPrefix(l, "m=") && !offers[l] {
				offers[l] = true
				ev = append(ev, Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("offer %s (payload types after the transport: the codecs offered)", l)})
			}
		}
	}
	return []Finding{{Severity: Error,
		Summary:  "the callee accepts none of the offered codecs: 488 Not Acceptable Here",
		Fix:      "give both phones a codec in common (siplab set <phone> codecs pcmu,pcma)",
		Evidence: ev}}
}
