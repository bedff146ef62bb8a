package doctor

import (
	"fmt"
	"sort"
	"strings"
)

// BindingState is one registration as the registrar holds it: where the
// REGISTER was seen coming from (a router's public address and port when
// the phone is behind NAT).
type BindingState struct {
	AOR       string
	Source    string // ip:port seen on the wire
	Transport string
}

// deadMapping: a registration whose seen address is a router's public
// ip:port that the router no longer maps. Calls go to that address and the
// router drops them (408, or ring nowhere) until the phone sends again:
// what a pinhole or preset change (which flushes every mapping) or an
// expired pinhole leaves behind.
func deadMapping(st LabState) []Finding {
	byWAN := map[string]RouterState{}
	for _, r := range st.Routers {
		if r.WAN != "" {
			byWAN[r.WAN] = r
		}
	}
	var out []Finding
	for _, b := range st.Bindings {
		if !strings.EqualFold(b.Transport, "udp") {
			continue
		}
		ip, _, ok := strings.Cut(b.Source, ":")
		if !ok {
			continue
		}
		r, ok := byWAN[ip]
		if !ok || r.Outside == nil {
			continue
		}
		if r.Outside[b.Source] {
			continue
		}
		live := make([]string, 0, len(r.Outside))
		for o := range r.Outside {
			live = append(live, o)
		}
		sort.Strings(live)
		user := strings.TrimPrefix(strings.SplitN(b.AOR, "@", 2)[0], "sip:")
		what := "no mapping"
		if len(live) > 0 {
			what = "mapped now: " + strings.Join(live, ", ")
		}
		out = append(out, Finding{
			Rule: "state-dead-mapping", Severity: Error,
			Summary: fmt.Sprintf("%s is registered at %s, but %s no longer maps that address: calls to %s go nowhere until it sends again", user, b.Source, r.Name, user),
			Note:    "a router's preset or pinhole change flushes every mapping; so does an idle pinhole expiring",
			Fix:     fmt.Sprintf("siplab exec %s register (a new REGISTER makes a new mapping and updates the binding), and keep-alives shorter than the pinhole", user),
			Evidence: []Evidence{
				{Iface: "registrar (status)", What: fmt.Sprintf("%s seen at %s/%s", b.AOR, b.Source, b.Transport)},
				{Iface: r.Name + " (status)", What: what},
			},
		})
	}
	return out
}
