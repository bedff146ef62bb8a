package sipalg

func init() {
	registerFault(Fault{
		Name:        "stale-content-length",
		Summary:     "rewrites the SDP but leaves Content-Length as it was, so it no longer matches the body",
		Symptom:     "registration works (REGISTER has no body), but every message with SDP is refused: with 192.168.1.50 → 203.0.113.2 the body shrinks and Content-Length promises bytes that never come, so the receiver discards the INVITE (RFC 3261 §18.3); no 100 Trying, no ringing, the caller retransmits and gets 408 after 32 s",
		Trace:       "Content-Length larger than the body (Wireshark: \"Content-Length ... exceeds\" / malformed packet); INVITE retransmissions with no 100 Trying",
		order:       20,
		staleLength: true,
	})
}
