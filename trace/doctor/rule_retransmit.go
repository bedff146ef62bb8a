package doctor

import (
	"fmt"

	"github.com/siplab/siplab/trace/ladder"
)

// Retransmissions are the capture's way of saying "the other side never
// answered": a final response repeated means its ACK never arrived (module
// 05); a request repeated means no response reached the sender.
func init() {
	register(Rule{Name: "retransmissions", Title: "retransmitted requests or final responses", Check: checkRetransmit})
}

func checkRetransmit(c *ladder.Call) []Finding {
	type key struct{ iface, msg string }
	count := map[key]int{}
	first := map[key]int{}
	var order []key
	for i, m := range c.Messages {
		if !m.Request && m.Status < 200 { // provisional repeats are normal
			continue
		}
		if m.Request && m.Method == "ACK" {
			continue
		}
		k := key{m.Iface, copyKey(m)}
		if count[k] == 0 {
			first[k] = i
			order = append(order, k)
		}
		count[k]++
	}
	var resp, req []Evidence
	for _, k := range order {
		if count[k] < 2 {
			continue
		}
		m := c.Messages[first[k]]
		e := Evidence{N: first[k] + 1, Iface: k.iface, What: fmt.Sprintf("%s %s → %s seen %d times", m.Label, m.Src, m.Dst, count[k])}
		if m.Request {
			req = append(req, e)
		} else {
			resp = append(resp, e)
		}
	}
	return withEvidence(
		Finding{Severity: Error, Evidence: resp,
			Summary: "final responses are retransmitted: the ACK (or, for a non-INVITE, the request was repeated) never arrives — usually a private Contact or a closed pinhole",
			Fix:     "check the Contact of the side that should send the ACK (siplab set proxy contact_fixup auto) and the pinhole on its router"},
		Finding{Severity: Error, Evidence: req,
			Summary: "requests are retransmitted: no response reached the sender (responses routed to a private Via, or the request never reached its target)",
			Fix:     "see where the copies stop in the ladder; rport on the phone and honoured by the proxy fixes the Via case"},
	)
}
