package natrouter

import "github.com/google/nftables/expr"

func init() {
	registerPreset(Preset{
		Name:      "symmetric",
		Mapping:   AddressAndPortDependent,
		Filtering: AddressAndPortDependent,
		Summary:   "masquerade fully-random: a new random external port for every destination (STUN-learned addresses stop working)",
		program: func(rs *ruleset, p params) {
			// fully-random picks the external port with a fresh random
			// number for each new flow, so each destination sees a
			// different port: address-and-port-dependent mapping.
			rs.addRule(chainPostrouting, "snat: masquerade fully-random (address-and-port-dependent mapping)",
				snatMatch(p), &expr.Masq{FullyRandom: true})
		},
	})
}
