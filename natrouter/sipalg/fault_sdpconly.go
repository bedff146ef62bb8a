package sipalg

func init() {
	registerFault(Fault{
		Name:    "sdp-c-only",
		Summary: "rewrites SDP c= but neither o= nor the m= port: the SDP is half translated",
		Symptom: "calls connect and audio flows in the lab (the router keeps the RTP port, so the untouched m= happens to be right); the o= line leaks the private address to the far end, and equipment that uses o= to identify or compare sessions (SBCs, recorders, some phones on re-INVITE) sees a session that does not match its c=",
		Trace:   "SDP with c=IN IP4 <public> but o=... IN IP4 <private>; m= port equal to the phone's own",
		order:   20,
		plan: func(_ *Message, _ Params, edits []Edit) []Edit {
			return dropField(edits, FieldSDPOrigin)
		},
	})
}
