package uaclient

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
)

func TestMessage(t *testing.T) {
	alice, bob := pair10(t, nil, nil)
	ctx := testCtx(t)
	text := "hello bob, ça va? ☎"
	rec, err := alice.SendMessage(ctx, "bob", text)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Direction != "out" || rec.To != "sip:bob@127.0.10.2" {
		t.Fatalf("sent record %+v", rec)
	}
	got := bob.Status().Messages
	if len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1: %+v", len(got), got)
	}
	m := got[0]
	if m.Direction != "in" || m.Text != text || !strings.HasPrefix(m.From, "sip:alice@") || m.Source != alice.Addr().String() || m.Code != 200 {
		t.Fatalf("bob's message %+v", m)
	}
	if out := alice.Status().Messages; len(out) != 1 || out[0].Text != text {
		t.Fatalf("alice's sent messages %+v", out)
	}

	for _, bad := range []string{"", strings.Repeat("x", maxMessageText+1), "\xff\xfe"} {
		if _, err := alice.SendMessage(ctx, "bob", bad); !errors.Is(err, ErrBadValue) {
			t.Errorf("message %.10q: err %v, want ErrBadValue", bad, err)
		}
	}
	if _, err := alice.SendMessage(ctx, "bo b", "hi"); !errors.Is(err, ErrBadTarget) {
		t.Errorf("bad target: %v", err)
	}
}

// A MESSAGE refused by the far end is a result with its code, not an error.
func TestMessageRefused(t *testing.T) {
	peer, phone := aliceBehindRawProxy(t, "127.0.10.4", "127.0.10.1:0")
	done := make(chan MessageRecord, 1)
	go func() {
		rec, err := phone.SendMessage(testCtx(t), "nobody", "anyone there?")
		if err != nil {
			t.Error(err)
		}
		done <- rec
	}()
	req, src := peer.next(sip.MESSAGE)
	if ct := req.ContentType(); ct == nil || !strings.HasPrefix(ct.Value(), "text/plain") || string(req.Body()) != "anyone there?" {
		t.Fatalf("MESSAGE as sent:\n%s", req)
	}
	peer.reply(req, src, 404, "Not Found")
	if rec := <-done; rec.Code != 404 || rec.Reason != "Not Found" {
		t.Fatalf("record %+v", rec)
	}
}

// What the phone answers to MESSAGE and INFO it cannot take.
func TestMessageAndInfoRefusals(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0", Settings: map[string]string{"auto_answer": "1ms"}})
	to, from := phone.Addr(), peer.addr()
	withBody := func(req *sip.Request, ct, body string) *sip.Request {
		req.RemoveHeader("Content-Type")
		if ct != "" {
			req.AppendHeader(sip.NewHeader("Content-Type", ct))
		}
		req.SetBody([]byte(body))
		return req
	}
	// A call to carry the INFOs.
	offer := rawOffer(t, rtpSocket(t, "127.0.10.4"))
	peer.send(rawRequest(sip.INVITE, phone, from, "info-1", "caller", "", 1, offer), to)
	ok := peer.nextResponse(sip.INVITE, 200)
	tag, _ := ok.To().Params.Get("tag")
	peer.send(rawRequest(sip.ACK, phone, from, "info-1", "caller", tag, 1, nil), to)
	waitCall(t, phone, "", StateConfirmed)

	tests := []struct {
		name     string
		req      *sip.Request
		wantCode int
		wantHdr  string
	}{
		{"MESSAGE json", withBody(rawRequest(sip.MESSAGE, phone, from, "m-1", "t1", "", 1, nil), "application/json", `{"a":1}`), 415, "Accept"},
		{"MESSAGE in unknown dialog", withBody(rawRequest(sip.MESSAGE, phone, from, "m-2", "t1", "t2", 1, nil), "text/plain", "hi"), 481, ""},
		{"MESSAGE plain", withBody(rawRequest(sip.MESSAGE, phone, from, "m-3", "t1", "", 1, nil), "text/plain;charset=UTF-8", "hi there"), 200, ""},
		{"INFO unknown dialog", withBody(rawRequest(sip.INFO, phone, from, "nope", "t1", "t2", 2, nil), "application/dtmf-relay", "Signal=1\r\n"), 481, ""},
		{"INFO dtmf-relay event number", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 2, nil), "application/dtmf-relay", "Signal=11\r\nDuration=100\r\n"), 200, ""},
		{"INFO application/dtmf", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 3, nil), "application/dtmf", "7"), 200, ""},
		{"INFO not a digit", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 4, nil), "application/dtmf-relay", "Signal=Z\r\n"), 400, "Warning"},
		{"INFO no signal", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 5, nil), "application/dtmf-relay", "Duration=100\r\n"), 400, "Warning"},
		{"INFO other package", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 6, nil), "application/media_control+xml", "<x/>"), 415, "Accept"},
		{"INFO empty", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 7, nil), "", ""), 200, ""},
		{"INFO stale CSeq", withBody(rawRequest(sip.INFO, phone, from, "info-1", "caller", tag, 3, nil), "application/dtmf", "1"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer.send(tt.req, to)
			res := peer.nextResponse(tt.req.Method, 0)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.wantCode)
			}
			if tt.wantHdr != "" && res.GetHeader(tt.wantHdr) == nil {
				t.Fatalf("response lacks %s:\n%s", tt.wantHdr, res)
			}
		})
	}
	st, _ := phone.CallStatus("")
	if st.DTMFInfoReceived != "#7" {
		t.Fatalf("INFO digits %q, want \"#7\"", st.DTMFInfoReceived)
	}
	msgs := phone.Messages()
	if len(msgs) != 1 || msgs[0].Text != "hi there" {
		t.Fatalf("messages %+v", msgs)
	}
}

// rawOffer is an SDP offer (PCMU) with a raw RTP socket as the address.
func rawOffer(t *testing.T, rtp *net.UDPConn) []byte {
	t.Helper()
	ap := rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	b, err := sdpneg.Build(sdpneg.Description{Addr: ap.Addr(), Port: int(ap.Port()), Codecs: []sdpneg.Codec{sdpneg.PCMU}, SessionID: 9, SessionVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInfoDTMF: with dtmf_mode info the digits travel as SIP INFO, and
// nothing arrives in RTP; the RTP way still works when switched back.
func TestInfoDTMF(t *testing.T) {
	alice, bob := pair10(t, nil, nil)
	aRef, bRef := connect(t, alice, bob)
	ctx := testCtx(t)
	if err := alice.Set("dtmf_mode", "info"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendDTMF(ctx, aRef, "5*#a"); err != nil {
		t.Fatal(err)
	}
	b, _ := bob.CallStatus(bRef)
	if b.DTMFInfoReceived != "5*#A" || b.DTMFReceived != "" {
		t.Fatalf("bob: INFO digits %q, RTP digits %q; want \"5*#A\" and none", b.DTMFInfoReceived, b.DTMFReceived)
	}
	if err := alice.Set("dtmf_mode", "rfc4733"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendDTMF(ctx, aRef, "9"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RTP digit", func() bool { b, _ := bob.CallStatus(bRef); return b.DTMFReceived == "9" })
	if a, _ := alice.CallStatus(aRef); a.DTMFSent != "5*#A9" {
		t.Fatalf("alice sent %q", a.DTMFSent)
	}
	if err := alice.Set("dtmf_mode", "smoke"); !errors.Is(err, ErrBadValue) {
		t.Fatalf("bad dtmf_mode: %v", err)
	}
}

// tcp_switch: a MESSAGE over 1300 bytes goes over TCP (RFC 3261 §18.1.1);
// set off, the phone sends it over UDP all the same — the one datagram IP
// fragments on a real link — and the peer still gets all of it.
func TestMessageTCPSwitch(t *testing.T) {
	ep := listen(t, "127.0.10.5")
	type arrival struct {
		transport string
		size      int
	}
	got := make(chan arrival, 4)
	ep.Server.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		got <- arrival{req.Transport(), len(req.Body())}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ctx := testCtx(t)
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.6:0", Proxy: ep.Addr().String()})
	long := strings.Repeat("0123456789 ", 300) // 3300 bytes
	for _, tt := range []struct {
		tcpSwitch, text, transport string
	}{
		{"on", "short", "UDP"},
		{"on", long, "TCP"},
		{"off", long, "UDP"},
		{"off", "short", "UDP"},
	} {
		if err := phone.Set("tcp_switch", tt.tcpSwitch); err != nil {
			t.Fatal(err)
		}
		rec, err := phone.SendMessage(ctx, "bob", tt.text)
		if err != nil || rec.Code != 200 {
			t.Fatalf("tcp_switch %s, %d bytes: %+v %v", tt.tcpSwitch, len(tt.text), rec, err)
		}
		if a := <-got; a.transport != tt.transport || a.size != len(tt.text) {
			t.Errorf("tcp_switch %s: %d bytes arrived over %s as %d bytes, want %s", tt.tcpSwitch, len(tt.text), a.transport, a.size, tt.transport)
		}
	}
}
