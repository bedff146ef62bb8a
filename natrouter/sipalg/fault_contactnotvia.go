package sipalg

func init() {
	registerFault(Fault{
		Name:    "contact-not-via",
		Summary: "rewrites Contact and SDP to the public address but leaves the Via as the phone wrote it",
		Symptom: "nothing while the server honours rport; responses the server sends to the Via (rport ignored, or ;rport stripped behind a port-changing NAT) go to the private address and are lost: REGISTER retransmitted, then timeout",
		Trace:   "in one message a public Contact next to a private Via sent-by: no phone writes that pair itself",
		order:   20,
		plan: func(_ *Message, _ Params, edits []Edit) []Edit {
			return dropField(edits, FieldVia)
		},
	})
}

// dropField removes the edits of one field.
func dropField(edits []Edit, f Field) []Edit {
	out := edits[:0:0]
	for _, e := range edits {
		if e.Field != f {
			out = append(out, e)
		}
	}
	return out
}
