package sipalg

func init() {
	registerFault(Fault{
		Name:    "wrong-port",
		Summary: "rewrites Via and Contact to the public address with a port the NAT never mapped (the mapped port + 1)",
		Symptom: "the phone registers and can call out (rport and the proxy's contact fix-up hide it); whatever trusts the written Contact or Via port sends into a closed port: with the proxy's contact_fixup off, calls to the phone never ring",
		Trace:   "Contact/Via port differs from the UDP source port of the same packet on the WAN side; the registrar's binding shows a Contact port that differs from the source it saw; inbound INVITEs to that port counted as unsolicited by the router",
		order:   20,
		plan: func(_ *Message, p Params, edits []Edit) []Edit {
			for i := range edits {
				if edits[i].Field != FieldVia && edits[i].Field != FieldContact {
					continue
				}
				// Off by one, like an ALG that allocates "its" port next to
				// the mapping and never opens it.
				edits[i].NewPort = WrongPort(p.MappedPort)
			}
			return edits
		},
	})
}

// WrongPort is the port the wrong-port fault writes for a mapped port.
func WrongPort(mapped uint16) uint16 {
	if mapped >= 0xffff {
		return 1024
	}
	return mapped + 1
}
