package natrouter

func init() {
	registerPreset(Preset{
		Name:      "port-restricted",
		Mapping:   EndpointIndependent,
		Filtering: AddressAndPortDependent,
		Summary:   "plain masquerade: one external port per inside socket (source port kept when free), replies only from the exact remote address:port",
		program: func(rs *ruleset, p params) {
			// Masquerade alone: conntrack only lets in packets matching a
			// flow's exact reply tuple, which is address-and-port-dependent
			// filtering.
			masquerade(rs, p)
		},
	})
}
