package natrouter

func init() {
	registerPreset(Preset{
		Name:      "full-cone",
		Mapping:   EndpointIndependent,
		Filtering: EndpointIndependent,
		Summary:   "masquerade plus inbound DNAT of mapped ports: once a phone sent out, anyone on the internet reaches it at its mapping",
		program: func(rs *ruleset, p params) {
			masquerade(rs, p)
			programCone(rs, p, false)
		},
	})
}
