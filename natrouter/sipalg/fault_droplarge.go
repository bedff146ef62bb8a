package sipalg

import "fmt"

func init() {
	registerFault(Fault{
		Name:    "drop-large",
		Summary: "drops SIP messages that did not fit in one packet (the ALG does not handle IP fragments)",
		Symptom: "small messages pass; a big INVITE (many codecs, long headers, video SDP) or a 200 OK with a long Record-Route vanishes at the router: the call never reaches the far end, the caller retransmits until timeout",
		Trace:   "on the LAN side the message arrives in IP fragments; on the WAN side nothing — not even the first fragment",
		order:   0,
		drop: func(pkt PacketInfo) string {
			mtu := pkt.MTU
			if mtu <= 0 {
				mtu = 1500
			}
			if pkt.IPLen > mtu {
				return fmt.Sprintf("%d-byte datagram does not fit the LAN MTU %d (it arrived in fragments)", pkt.IPLen, mtu)
			}
			return ""
		},
	})
}
