package natrouter

func init() {
	registerPreset(Preset{
		Name:      "restricted-cone",
		Mapping:   EndpointIndependent,
		Filtering: AddressDependent,
		Summary:   "masquerade plus inbound DNAT of mapped ports from addresses the phone sent to, from any of their ports",
		program: func(rs *ruleset, p params) {
			masquerade(rs, p)
			programCone(rs, p, true)
		},
	})
}
