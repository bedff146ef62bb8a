package uaclient

import (
	"strings"
	"testing"
)

// Status carries the last INVITE and its 2xx as sent by one phone and as
// received by the other: headers and the SDP lines that route the media.
func TestStatusShowsLastInviteBothWays(t *testing.T) {
	alice, bob := pair(t, func(c *Config) { c.Settings = map[string]string{"sdp_addr": "127.0.0.9"} },
		func(c *Config) { c.Settings = map[string]string{"auto_answer": "50ms"} })
	ctx := testCtx(t)
	c, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, StateConfirmed); err != nil {
		t.Fatal(err)
	}
	a, b := alice.Status().LastInvite, bob.Status().LastInvite
	if a.InviteSent == nil || b.InviteReceived == nil || b.AnswerSent == nil || a.AnswerReceived == nil {
		t.Fatalf("missing views: alice %+v, bob %+v", a, b)
	}
	sent, got := a.InviteSent, b.InviteReceived
	if !strings.HasPrefix(sent.StartLine, "INVITE sip:bob") || sent.CallID != got.CallID || sent.CSeq != "1 INVITE" {
		t.Errorf("sent %+v / received %+v", sent, got)
	}
	if len(sent.Via) != 1 || !strings.Contains(sent.Via[0], "rport") || sent.Contact == "" || sent.From == "" || sent.To == "" {
		t.Errorf("headers as sent: %+v", sent)
	}
	if sent.SDP == nil || len(sent.SDP.Connection) != 1 || sent.SDP.Connection[0] != "c=IN IP4 127.0.0.9" ||
		len(sent.SDP.Media) != 1 || !strings.HasPrefix(sent.SDP.Media[0], "m=audio ") || len(sent.SDP.RTPMap) == 0 {
		t.Errorf("SDP as sent: %+v", sent.SDP)
	}
	if got.SDP == nil || got.SDP.Connection[0] != "c=IN IP4 127.0.0.9" || got.Peer == "" {
		t.Errorf("SDP as received: %+v (peer %s)", got.SDP, got.Peer)
	}
	if b.AnswerSent.SDP == nil || a.AnswerReceived.SDP == nil || a.AnswerReceived.StartLine != "SIP/2.0 200 OK" {
		t.Errorf("answer: sent %+v received %+v", b.AnswerSent, a.AnswerReceived)
	}
	// Hold: the re-INVITE's direction shows.
	if err := alice.Hold(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if d := bob.Status().LastInvite.InviteReceived.SDP.Direction; d != "sendonly" {
		t.Errorf("re-INVITE for hold received with direction %q, want sendonly", d)
	}
}
