package exercise

import "context"

// twoWay is the check of every "audio is missing" exercise: a probe call
// that must connect with each side hearing the other's tone. Whatever the
// intern changed, only the audio decides.
func twoWay(from, to string) func(ctx context.Context, p *Probe) Result {
	return func(ctx context.Context, p *Probe) Result {
		r := newResult()
		p.TwoWayAudio(ctx, &r, from, to, CallOpts{})
		return r
	}
}

func init() {
	register(&Exercise{
		ID:     "01-who-hears-whom",
		Module: "01 Signalling vs media",
		Title:  "The call is up, the audio is not",
		Task: "bob's phone has been reconfigured. Call bob from alice: the call connects — signalling works. " +
			"Find out from the RTP statistics who hears whom, and why, then make both hear each other (without touching the routers).",
		Setup: []Step{
			RunExpect("set router-a preset full-cone", "site A's router lets in packets from anyone to a mapped port (so one direction can work)"),
			Run("exec alice register"),
			RunExpect("set bob sdp_addr local", "bob's next SDP says c=IN IP4 192.168.2.50"),
		},
		Observe: []string{
			"`siplab call alice bob`, then `siplab exec alice status` and `siplab exec bob status`: the call is `confirmed` on both phones; " +
				"the media lines show packets sent and received, and the source address the audio came from.",
			"`siplab exec bob status`: bob's `sdp:` line — the address he asked alice to send to.",
			"`siplab doctor`: the SDP of the last call names a private address.",
		},
		Hints: []string{
			"Signalling and media take different paths: the SIP went through the proxy (203.0.113.10), the RTP goes to whatever address each SDP names.",
			"Compare the `c=` each phone wrote with the address the other one's packets really came from.",
			"192.168.2.50 is bob's LAN address: nobody on the internet can send to it.",
		},
		Fix:     []Step{RunExpect("set bob sdp_addr 203.0.113.3", "bob writes his router's public address (or `stun`: ask the STUN server)")},
		Symptom: "bob heard nothing: 0 RTP packets received",
		Pass:    "bob heard alice's",
		Check:   twoWay("alice", "bob"),
	})
}
