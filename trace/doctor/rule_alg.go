package doctor

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
)

// A NAT router rewrites packet headers only; the SIP text must cross it
// byte for byte. When the LAN and WAN copies of one message at the same
// router differ, something rewrote the payload in transit: a SIP ALG
// (docs/alg/). The rule names the lines that changed.
func init() {
	register(Rule{Name: "alg-rewrite", Title: "SIP payload rewritten in transit (ALG)", Check: checkALG})
}

func checkALG(c *ladder.Call) []Finding {
	type key struct{ node, msg string }
	lan := map[key]int{}
	wan := map[key]int{}
	for i, m := range c.Messages {
		side := m.Iface[strings.LastIndexByte(m.Iface, '/')+1:]
		k := key{node(m.Iface), copyKey(m)}
		switch side {
		case "lan":
			if _, ok := lan[k]; !ok {
				lan[k] = i
			}
		case "wan":
			if _, ok := wan[k]; !ok {
				wan[k] = i
			}
		}
	}
	var ev []Evidence
	reported := map[string]bool{}
	for i, m := range c.Messages {
		k := key{node(m.Iface), copyKey(m)}
		li, lok := lan[k]
		wi, wok := wan[k]
		if !lok || !wok || i != min(li, wi) {
			continue
		}
		a, b := c.Messages[li], c.Messages[wi]
		if bytes.Equal(a.Payload, b.Payload) {
			continue
		}
		for _, d := range diffLines(a.Payload, b.Payload) {
			if reported[k.node+d] {
				continue
			}
			reported[k.node+d] = true
			ev = append(ev, Evidence{N: wi + 1, Iface: b.Iface, What: fmt.Sprintf("%s (LAN copy #%d): %s", b.Label, li+1, d)})
		}
	}
	return withEvidence(Finding{Severity: Error,
		Summary:  "the router changed the SIP text between its LAN and WAN side: a SIP ALG is rewriting payloads",
		Fix:      "turn the ALG off on the customer router (siplab set <router> alg off); see docs/alg/",
		Evidence: ev})
}

// diffLines describes the lines of a that b changed, as "Call-ID: x → y".
// Messages are compared line by line; an ALG replaces text in place, so
// line counts match; when they do not, the first differing line is named.
func diffLines(a, b []byte) []string {
	la := strings.Split(string(a), "\r\n")
	lb := strings.Split(string(b), "\r\n")
	var out []string
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			out = append(out, fmt.Sprintf("%q → %q", la[i], lb[i]))
		}
	}
	if len(la) != len(lb) {
		out = append(out, fmt.Sprintf("%d lines on the LAN, %d on the WAN", len(la), len(lb)))
	}
	return out
}
