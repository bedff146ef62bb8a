package doctor

import (
	"fmt"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// Lie 1 of module 08: a private Via sent-by without ;rport on the internet
// side means responses are sent to the written address and never arrive.
// With rport the same private Via is harmless (RFC 3581), so it is not
// reported.
func init() {
	register(Rule{Name: "private-via", Title: "private Via without rport on the internet side", Check: checkPrivateVia})
}

func checkPrivateVia(c *ladder.Call) []Finding {
	var ev []Evidence
	seen := map[string]bool{}
	for i, m := range c.Messages {
		if !m.Request || !public(c, m.Iface) {
			continue
		}
		sentBy, params := siptext.TopVia(m.Header("Via"))
		a, ok := siptext.HostAddr(sentBy)
		if !ok || !siptext.Private(a) {
			continue
		}
		if _, rport := params["rport"]; rport {
			continue
		}
		if seen[copyKey(m)] { // a retransmission says nothing new
			continue
		}
		seen[copyKey(m)] = true
		ev = append(ev, Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("%s: Via sent-by %s, no rport", m.Label, sentBy)})
	}
	return withEvidence(Finding{
		Severity: Error,
		Summary:  "a request left the site with a private Via and no rport: the server answers the written address, the responses never come back",
		Fix:      "siplab set <phone> rport on (and the proxy honouring rport: siplab set proxy rport honour)",
		Evidence: ev,
	})
}
