package exercise

import (
	"context"
	"slices"
	"strings"
	"time"
)

func checkCodec(ctx context.Context, p *Probe) Result {
	r := newResult()
	c := p.requireCall(ctx, &r, "alice", "bob")
	if c == nil {
		return r
	}
	bob, ok := p.requirePhone(ctx, &r, "bob")
	if !ok {
		return r
	}
	alice, _ := p.Phone(ctx, "alice")
	bc := peerCall(bob, c.CallID)
	r.require(isPCMA(c.Codec), "alice's call %s agreed on %s (alice's SDP %s, bob's %s)", c.ID, orNone(c.Codec), c.LocalSDP, c.RemoteSDP)
	if !r.require(bc != nil, "bob's side of the call found: %v", bc != nil) {
		return r
	}
	r.require(isPCMA(bc.Codec), "bob's side agreed on %s", orNone(bc.Codec))
	r.require(heardTone(c, bob.ToneHz), "%s", Leg{Phone: "alice", Call: c}.HearsLine(Leg{Phone: "bob", Tone: bob.ToneHz}))
	r.require(heardTone(bc, alice.ToneHz), "%s", Leg{Phone: "bob", Call: bc}.HearsLine(Leg{Phone: "alice", Tone: alice.ToneHz}))
	return r
}

func init() {
	register(&Exercise{
		ID: "06-codec", Module: "06 SDP", Title: "Offer/answer: make the call use PCMA",
		Task: "The phones offer PCMU first (m=audio … 0 8 101) and agree on PCMU. Make a call from alice to bob use G.711 A-law (PCMA, payload type 8) " +
			"with audio both ways, and read the m= and rtpmap lines of offer and answer.",
		Observe: []string{
			"`siplab exec alice status`: the codec line of each call and the `sdp:` c=/m= addresses.",
			"`siplab explain`: the INVITE's SDP line by line: `c=`, `m=audio <port> RTP/AVP 0 8 101`, `a=rtpmap:8 PCMA/8000`.",
		},
		Hints: []string{
			"The answerer picks from the offer: change what alice offers (`siplab set alice codecs pcma`).",
			"No codec in common would end in 488 (exercise 04-responses).",
		},
		Fix: slices.Concat(
			[]Step{RunExpect("set alice codecs pcma", "alice offers only PCMA")},
			callUp("alice", "bob"),
			[]Step{Pause(2*time.Second, "audio both ways"), Run("hangup alice")},
		),
		Symptom: noCall("alice", "bob"),
		Pass:    "bob's side agreed on PCMA",
		Check:   checkCodec,
	})
}

// isPCMA accepts the codec as the phone names it ("PCMA/8000").
func isPCMA(codec string) bool {
	name, _, _ := strings.Cut(codec, "/")
	return strings.EqualFold(name, "pcma")
}
