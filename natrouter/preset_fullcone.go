package natrouter

import "github.com/google/nftables/expr"

func init() {
	registerPreset(Preset{
		Name:      "full-cone",
		Mapping:   EndpointIndependent,
		Filtering: EndpointIndependent,
		Summary:   "masquerade plus inbound DNAT of mapped ports: once a phone sent out, anyone on the internet reaches it at its mapping",
		program: func(rs *ruleset, p params) {
			rs.addRule(chainPostrouting, "snat: masquerade (endpoint-independent mapping)",
				snatMatch(p), &expr.Masq{})
			programCone(rs, p, false)
		},
	})
}
