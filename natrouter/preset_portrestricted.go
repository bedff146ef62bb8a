package natrouter

import "github.com/google/nftables/expr"

func init() {
	registerPreset(Preset{
		Name:      "port-restricted",
		Mapping:   EndpointIndependent,
		Filtering: AddressAndPortDependent,
		Summary:   "plain masquerade: one external port per inside socket (source port kept when free), replies only from the exact remote address:port",
		program: func(rs *ruleset, p params) {
			// Plain masquerade keeps the inside source port when it is free
			// and reuses the mapping for every destination: that is
			// endpoint-independent mapping. Conntrack only lets in packets
			// matching a flow's exact reply tuple, which is
			// address-and-port-dependent filtering.
			rs.addRule(chainPostrouting, "snat: masquerade (endpoint-independent mapping)",
				snatMatch(p), &expr.Masq{})
		},
	})
}
