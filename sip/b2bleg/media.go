package b2bleg

import "context"

// Media is a leg whose peer speaks another SDP than the rest of the call:
// a browser's ICE and DTLS-SRTP, bridged to the call's plain RTP by a
// media gateway (media/webrtcgw). It is the leg's own offer/answer with
// its peer — the gateway leg kind — and the owner runs every SDP body
// crossing the leg through it: in from the peer (In), out to the peer
// (Out). A leg without one passes bodies as they are.
//
// Each method gets and returns one complete body; which step of the
// offer/answer exchange it is (the first, or a re-INVITE's) is the
// implementation's to know.
type Media interface {
	// OfferIn turns the peer's offer (INVITE, re-INVITE) into the call's.
	OfferIn(body []byte) ([]byte, error)
	// AnswerOut turns the call's answer to it into the peer's; the same
	// answer again (a 2xx after a 183) gets the same result.
	AnswerOut(ctx context.Context, body []byte) ([]byte, error)
	// Refused says the exchange the peer's last offer began ended
	// without an answer (refused, timed out): nothing of the offer is
	// kept. The owner says it before the peer hears the outcome (the
	// peer may offer again at once); after AnswerOut took the answer
	// it changes nothing.
	Refused()
	// OfferOut turns the call's offer into the peer's. answered means
	// the leg answered it itself without asking the peer (a gateway
	// re-pointing its plain RTP): out is then the call's answer and
	// nothing goes to the peer.
	OfferOut(ctx context.Context, body []byte) (out []byte, answered bool, err error)
	// AnswerIn turns the peer's answer into the call's.
	AnswerIn(body []byte) ([]byte, error)
	// Close releases the media when the leg's call ends.
	Close() error
}

// Media is the leg's own offer/answer with its peer (nil: none, bodies
// pass as they are). It is fixed when the leg is made.
func (l *Leg) Media() Media { return l.cfg.Media }
