package sipalg

func init() {
	registerFault(Fault{
		Name:    "rewrite-call-id",
		Summary: "replaces the private address inside Call-ID too (a blind search-and-replace), on the way out only",
		Symptom: "calls the phone places connect, but requests the far end sends in that dialog carry the rewritten Call-ID, which the phone does not know: the callee's BYE gets 481 Call/Transaction Does Not Exist and the caller stays in a call nobody is on",
		Trace:   "the Call-ID differs between the LAN side and the WAN side of the router (…@192.168.1.50 inside, …@203.0.113.2 outside); a 481 answering an in-dialog request from the far end",
		order:   10,
		plan: func(m *Message, p Params, edits []Edit) []Edit {
			for _, o := range m.Occurrences {
				if o.Field == FieldCallID {
					// Only the address: a Call-ID is an opaque word, the
					// text after a colon is not a port to this ALG.
					o.PortEnd, o.Port = o.End, 0
					edits = append(edits, Edit{Occurrence: o, NewAddr: p.WAN})
				}
			}
			return edits
		},
	})
}
