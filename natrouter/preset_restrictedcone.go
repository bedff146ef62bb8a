package natrouter

import "github.com/google/nftables/expr"

func init() {
	registerPreset(Preset{
		Name:      "restricted-cone",
		Mapping:   EndpointIndependent,
		Filtering: AddressDependent,
		Summary:   "masquerade plus inbound DNAT of mapped ports from addresses the phone sent to, from any of their ports",
		program: func(rs *ruleset, p params) {
			rs.addRule(chainPostrouting, "snat: masquerade (endpoint-independent mapping)",
				snatMatch(p), &expr.Masq{})
			programCone(rs, p, true)
		},
	})
}
