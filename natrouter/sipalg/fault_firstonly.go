package sipalg

func init() {
	registerFault(Fault{
		Name:    "first-only",
		Summary: "rewrites only the first private address in the message (a replace-once), usually the Via",
		Symptom: "registration and call set-up work (the proxy fixes the Contact from the source address), but the SDP still carries the private address: the far end sends its audio to 192.168.1.x, which nobody routes — one-way or no audio",
		Trace:   "the top Via (or the first occurrence) is public, the Contact and the SDP c=/o= further down still private",
		order:   100,
		plan: func(_ *Message, _ Params, edits []Edit) []Edit {
			if len(edits) <= 1 {
				return edits
			}
			first := 0
			for i, e := range edits {
				if e.Start < edits[first].Start {
					first = i
				}
			}
			return []Edit{edits[first]}
		},
	})
}
