package webrtcgw

import (
	"bytes"
	"context"
	"slices"

	"github.com/siplab/siplab/sip/sdpneg"
)

// The gateway as a leg of a back-to-back call (b2bleg.Media): the browser
// is the leg's peer, the core the rest of the call. Each method picks the
// step from where the negotiation stands, so the B2BUA runs every SDP
// crossing a browser's leg through the same four calls, first INVITE or
// re-INVITE alike.

// OfferIn is the browser's offer: its first (OfferFromBrowser) or a
// re-offer (ReofferFromBrowser). It returns the plain offer for the core.
func (c *Call) OfferIn(body []byte) ([]byte, error) {
	if c.getState() == idle {
		return c.OfferFromBrowser(string(body))
	}
	return c.ReofferFromBrowser(string(body))
}

// AnswerOut is the core's answer to the browser's offer, returned as the
// browser's. The answer again (the 2xx after a 183) gets the browser the
// same answer; a changed one moves the gateway's plain RTP to it.
func (c *Call) AnswerOut(ctx context.Context, body []byte) ([]byte, error) {
	if out, ok := c.answeredAgain(body, true); ok {
		return out, nil
	}
	ans, err := c.AnswerFromCore(ctx, body)
	if err != nil {
		return nil, err
	}
	c.remember(body, []byte(ans))
	return []byte(ans), nil
}

// OfferOut is an offer from the core: the first (a call to the browser:
// the WebRTC offer for it) or a re-offer, which the gateway answers
// itself (answered: nothing goes to the browser, ReofferFromCore).
func (c *Call) OfferOut(ctx context.Context, body []byte) (out []byte, answered bool, err error) {
	if c.getState() == idle {
		o, err := c.OfferFromCore(ctx, body)
		return []byte(o), false, err
	}
	a, err := c.ReofferFromCore(body)
	return a, true, err
}

// AnswerIn is the browser's answer to the gateway's offer, returned as
// the plain answer for the core; the same answer again gets the same.
func (c *Call) AnswerIn(body []byte) ([]byte, error) {
	if out, ok := c.answeredAgain(body, false); ok {
		return out, nil
	}
	ans, err := c.AnswerFromBrowser(string(body))
	if err != nil {
		return nil, err
	}
	c.remember(body, ans)
	return ans, nil
}

// answeredAgain is the converted answer when this exchange is already
// over (state active with an answer converted): a repeated answer. A
// changed plain one from the core still moves the RTP destination.
func (c *Call) answeredAgain(body []byte, fromCore bool) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != active || c.answerOut == nil {
		return nil, false
	}
	if fromCore && !bytes.Equal(body, c.answerIn) {
		if r, err := sdpneg.Parse(body); err == nil && slices.ContainsFunc(r.AudioCodecs(), c.codec.Same) {
			c.coreRemote, c.coreDir = remoteOf(r), r.Direction
			c.answerIn = bytes.Clone(body)
		}
	}
	return c.answerOut, true
}

func (c *Call) remember(in, out []byte) {
	c.mu.Lock()
	c.answerIn, c.answerOut = bytes.Clone(in), out
	c.mu.Unlock()
}
