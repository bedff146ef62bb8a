package doctor

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// Lie 3 of module 08: the SDP tells the far end to send audio to a private
// address. Only the copy seen on the internet side proves the lie left the
// site (the LAN copy is allowed to be private).
func init() {
	register(Rule{Name: "private-sdp", Title: "private address in SDP c=/o= on the internet side", Check: checkPrivateSDP})
}

func checkPrivateSDP(c *ladder.Call) []Finding {
	var ev []Evidence
	for i, m := range c.Messages {
		if !public(c, m.Iface) {
			continue
		}
		for _, l := range sdpLines(m) {
			if !strings.HasPrefix(l, "c=") {
				continue
			}
			f := strings.Fields(l)
			if a, ok := siptext.HostAddr(f[len(f)-1]); ok && siptext.Private(a) {
				ev = append(ev, Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("%s: %s", m.Label, l)})
			}
		}
	}
	if len(ev) == 0 {
		return nil
	}
	if !mediaFailed(c) {
		// Audio flowed both ways anyway: something latched to where the
		// packets came from (the SBC's or the PBX's relay, symmetric RTP
		// at the far end). Nothing breaks today.
		return []Finding{{
			Severity: Note,
			Summary:  "the SDP crossed the internet with a private media address, but audio flowed both ways: the far end latched to where the RTP came from",
			Note:     "a far end that trusts the SDP (no latching) sends its audio into the void",
			Fix:      "advertise the public address (siplab set <phone> sdp_addr <router public ip>, or sdp_addr stun)",
			Evidence: ev,
		}}
	}
	return []Finding{{
		Severity: Error,
		Summary:  "the SDP crossed the internet with a private media address: the far end sends its audio into the void (one-way or no audio)",
		Fix:      "advertise the public address (siplab set <phone> sdp_addr <router public ip>) with symmetric RTP on, or latch media at the far end / an SBC",
		Evidence: ev,
	}}
}
