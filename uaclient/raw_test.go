package uaclient

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipauth"
)

// These tests put a bare socket where the proxy (or the far phone) would
// be, so they can answer with exactly the message a case needs and see
// exactly what the phone writes back.

func (r *rawPeer) send(msg sip.Message, to netip.AddrPort) {
	r.t.Helper()
	if _, err := r.Conn.WriteToUDPAddrPort([]byte(msg.String()), to); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawPeer) sendRaw(b string, to netip.AddrPort) {
	r.t.Helper()
	if _, err := r.Conn.WriteToUDPAddrPort([]byte(b), to); err != nil {
		r.t.Fatal(err)
	}
}

// nextResponse returns the next response to method (skipping 100 Trying
// unless code asks for it; code 0 = any final).
func (r *rawPeer) nextResponse(method sip.RequestMethod, code int) *sip.Response {
	r.t.Helper()
	for {
		b, _ := r.nextRaw()
		if strings.TrimSpace(string(b)) == "" {
			continue
		}
		msg, err := sip.ParseMessage(append([]byte(nil), b...))
		if err != nil {
			r.t.Fatalf("unparsable: %v\n%s", err, b)
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.CSeq().MethodName != method {
			continue
		}
		if code == 0 && res.StatusCode >= 200 || res.StatusCode == code {
			return res
		}
	}
}

// answerSDP answers an offer with a raw RTP socket as our media address.
func answerSDP(t *testing.T, offer []byte, rtp net.PacketConn) []byte {
	t.Helper()
	o, err := sdpneg.Parse(offer)
	if err != nil {
		t.Fatal(err)
	}
	ap := rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	body, _, _, err := sdpneg.Answer(o, sdpneg.Description{Addr: ap.Addr(), Port: int(ap.Port()), Codecs: []sdpneg.Codec{sdpneg.PCMU}, SessionID: 7, SessionVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func rtpSocket(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInviteProxyAuthentication(t *testing.T) {
	users, err := sipauth.NewUsers(sipauth.User{Name: "alice", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		wantCode int
		wantWhy  string
	}{
		{name: "right password", password: "secret", wantCode: 486},
		{name: "wrong password", password: "nope", wantCode: 407, wantWhy: "wrong credentials (407 again)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := sipauth.New(sipauth.Config{Realm: "siplab.test", Users: users})
			if err != nil {
				t.Fatal(err)
			}
			proxy := newRawPeer(t, "127.0.0.4")
			phone := startPhone(t, Config{Name: "alice", Password: tt.password, Domain: "siplab.test", Listen: "127.0.0.2:0", Proxy: proxy.addr()})
			if _, err := phone.Call(testCtx(t), "bob"); err != nil {
				t.Fatal(err)
			}
			inv1, src := proxy.next(sip.INVITE)
			d := auth.Authenticate(inv1, sipauth.Proxy)
			if d.Verdict != sipauth.Challenge {
				t.Fatalf("first INVITE: %v, want a challenge", d.Verdict)
			}
			proxy.send(auth.Respond(inv1, sipauth.Proxy, d), src)
			ack, _ := proxy.next(sip.ACK)
			if ack.CSeq().SeqNo != inv1.CSeq().SeqNo || ack.Via().Value() != inv1.Via().Value() {
				t.Fatalf("ACK for 407 %q / %q does not match the INVITE %q / %q", ack.CSeq().Value(), ack.Via().Value(), inv1.CSeq().Value(), inv1.Via().Value())
			}
			inv2, src := proxy.next(sip.INVITE)
			if inv2.CSeq().SeqNo != inv1.CSeq().SeqNo+1 || inv2.CallID().Value() != inv1.CallID().Value() {
				t.Fatalf("retried INVITE CSeq %d Call-ID %s; first %d %s", inv2.CSeq().SeqNo, inv2.CallID().Value(), inv1.CSeq().SeqNo, inv1.CallID().Value())
			}
			if b1, _ := inv1.Via().Params.Get("branch"); b1 == func() string { b, _ := inv2.Via().Params.Get("branch"); return b }() {
				t.Fatal("retried INVITE reuses the branch: it is a new transaction")
			}
			d = auth.Authenticate(inv2, sipauth.Proxy)
			if tt.wantCode == 486 {
				if d.Verdict != sipauth.Accept {
					t.Fatalf("credentials refused: %v %s", d.Verdict, d.Reason)
				}
				proxy.reply(inv2, src, 486, "Busy Here")
			} else {
				if d.Verdict != sipauth.Challenge {
					t.Fatalf("wrong password accepted: %v", d.Verdict)
				}
				proxy.send(auth.Respond(inv2, sipauth.Proxy, d), src)
			}
			st := waitCall(t, phone, "", StateTerminated)
			if st.Code != tt.wantCode || !strings.Contains(st.EndReason, tt.wantWhy) {
				t.Fatalf("call ended %d %s (%s), want %d %q", st.Code, st.Reason, st.EndReason, tt.wantCode, tt.wantWhy)
			}
		})
	}
}

func TestRouteSetAndRetransmitted2xx(t *testing.T) {
	tests := []struct {
		name string
		// rr builds the Record-Route values in the 2xx, given the raw
		// proxy's host:port.
		rr        func(self string) []string
		wantRURI  string   // of ACK/BYE
		wantRoute []string // Route values of ACK/BYE
	}{
		{
			name:      "loose routing",
			rr:        func(self string) []string { return []string{"<sip:10.9.9.9;lr>", "<sip:" + self + ";lr>"} },
			wantRURI:  "sip:bob@127.0.0.9:5999",
			wantRoute: []string{"<sip:SELF;lr>", "<sip:10.9.9.9;lr>"},
		},
		{
			name:      "strict routing",
			rr:        func(self string) []string { return []string{"<sip:" + self + ">"} },
			wantRURI:  "sip:SELF",
			wantRoute: []string{"<sip:bob@127.0.0.9:5999>"},
		},
		{
			name:      "no record-route",
			rr:        func(string) []string { return nil },
			wantRURI:  "sip:bob@127.0.0.9:5999",
			wantRoute: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := newRawPeer(t, "127.0.0.4")
			self := proxy.addr()
			fix := func(s string) string { return strings.ReplaceAll(s, "SELF", self) }
			phone := startPhone(t, Config{Name: "alice", Listen: "127.0.0.2:0", Proxy: self})
			if _, err := phone.Call(testCtx(t), "bob"); err != nil {
				t.Fatal(err)
			}
			inv, src := proxy.next(sip.INVITE)
			rtp := rtpSocket(t, "127.0.0.4")
			res := sip.NewResponseFromRequest(inv, 200, "OK", answerSDP(t, inv.Body(), rtp))
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			res.AppendHeader(sip.NewHeader("Contact", "<sip:bob@127.0.0.9:5999>"))
			for _, v := range tt.rr(self) {
				res.AppendHeader(sip.NewHeader("Record-Route", v))
			}
			if len(tt.wantRoute) == 0 {
				// Without a route set the ACK goes to the Contact, which
				// nobody serves here; only the loose/strict cases can see it.
				proxy.send(res, src)
				waitCall(t, phone, "", StateConfirmed)
				return
			}
			proxy.send(res, src)
			check := func(req *sip.Request, method sip.RequestMethod) {
				t.Helper()
				if got := req.Recipient.String(); got != fix(tt.wantRURI) {
					t.Errorf("%s Request-URI %s, want %s", method, got, fix(tt.wantRURI))
				}
				var routes []string
				for _, h := range req.GetHeaders("Route") {
					routes = append(routes, h.Value())
				}
				want := make([]string, len(tt.wantRoute))
				for i, r := range tt.wantRoute {
					want[i] = fix(r)
				}
				if strings.Join(routes, ",") != strings.Join(want, ",") {
					t.Errorf("%s Route %v, want %v", method, routes, want)
				}
				if tag, _ := req.To().Params.Get("tag"); tag == "" {
					t.Errorf("%s without the remote tag", method)
				}
			}
			ack, _ := proxy.next(sip.ACK)
			check(ack, sip.ACK)
			if ack.CSeq().SeqNo != inv.CSeq().SeqNo {
				t.Errorf("ACK CSeq %d, INVITE %d", ack.CSeq().SeqNo, inv.CSeq().SeqNo)
			}
			// The 2xx again (as if our ACK was lost): a second ACK follows.
			proxy.send(res, src)
			ack2, _ := proxy.next(sip.ACK)
			check(ack2, sip.ACK)
			waitCall(t, phone, "", StateConfirmed)

			go phone.Hangup(testCtx(t), "")
			bye, src := proxy.next(sip.BYE)
			check(bye, sip.BYE)
			if bye.CSeq().SeqNo != inv.CSeq().SeqNo+1 {
				t.Errorf("BYE CSeq %d, want %d", bye.CSeq().SeqNo, inv.CSeq().SeqNo+1)
			}
			proxy.reply(bye, src, 200, "OK")
			st := waitCall(t, phone, "", StateTerminated)
			if st.EndReason != "BYE sent, 200 OK" {
				t.Fatalf("end reason %q", st.EndReason)
			}
		})
	}
}

// rawRequest builds a request from the raw peer to the phone.
func rawRequest(method sip.RequestMethod, phone *Phone, from string, callID, fromTag, toTag string, cseq uint32, body []byte) *sip.Request {
	ruri := sip.Uri{Scheme: "sip", User: "alice", Host: phone.Addr().Addr().String(), Port: int(phone.Addr().Port())}
	req := sip.NewRequest(method, ruri)
	fromHost, fromPort, _ := net.SplitHostPort(from)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: fromHost, Params: sip.NewParams()}
	via.Port = atoiPort(fromPort)
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	req.AppendHeader(sip.NewHeader("From", "<sip:carol@"+from+">;tag="+fromTag))
	to := "<" + ruri.String() + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	req.AppendHeader(sip.NewHeader("To", to))
	req.AppendHeader(sip.NewHeader("Call-ID", callID))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:carol@"+from+">"))
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	return req
}

func atoiPort(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestUASAnswers(t *testing.T) {
	peer := newRawPeer(t, "127.0.0.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.0.2:0"})
	to := phone.Addr()
	from := peer.addr()

	tests := []struct {
		name     string
		req      func() string
		method   sip.RequestMethod
		wantCode int
		wantHdrs []string // headers that must be present
	}{
		{
			name:     "OPTIONS out of dialog",
			req:      func() string { return rawRequest(sip.OPTIONS, phone, from, "opt-1", "t1", "", 1, nil).String() },
			method:   sip.OPTIONS,
			wantCode: 200,
			wantHdrs: []string{"Allow", "Accept", "Supported"},
		},
		{
			name:     "BYE for unknown dialog",
			req:      func() string { return rawRequest(sip.BYE, phone, from, "nope", "t1", "t2", 2, nil).String() },
			method:   sip.BYE,
			wantCode: 481,
		},
		{
			name:     "re-INVITE for unknown dialog",
			req:      func() string { return rawRequest(sip.INVITE, phone, from, "nope2", "t1", "t2", 2, nil).String() },
			method:   sip.INVITE,
			wantCode: 481,
		},
		{
			name:     "CANCEL matching nothing",
			req:      func() string { return rawRequest(sip.CANCEL, phone, from, "nope3", "t1", "", 1, nil).String() },
			method:   sip.CANCEL,
			wantCode: 481,
		},
		{
			name:     "method we do not do",
			req:      func() string { return rawRequest(sip.PUBLISH, phone, from, "msg-1", "t1", "", 1, nil).String() },
			method:   sip.PUBLISH,
			wantCode: 405,
			wantHdrs: []string{"Allow"},
		},
		{
			name: "INVITE with unparsable SDP",
			req: func() string {
				return rawRequest(sip.INVITE, phone, from, "bad-sdp", "t1", "", 1, []byte("this is not sdp\r\n")).String()
			},
			method:   sip.INVITE,
			wantCode: 400,
			wantHdrs: []string{"Warning"},
		},
		{
			name: "INVITE offering only G.729",
			req: func() string {
				sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.4\r\ns=-\r\nc=IN IP4 127.0.0.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
				return rawRequest(sip.INVITE, phone, from, "g729", "t1", "", 1, []byte(sdp)).String()
			},
			method:   sip.INVITE,
			wantCode: 488,
			wantHdrs: []string{"Warning"},
		},
		{
			name: "CSeq method mismatch (sipcheck)",
			req: func() string {
				s := rawRequest(sip.OPTIONS, phone, from, "mm", "t1", "", 1, nil).String()
				return strings.Replace(s, "CSeq: 1 OPTIONS", "CSeq: 1 BYE", 1)
			},
			method:   sip.BYE, // the response carries the request's CSeq
			wantCode: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer.sendRaw(tt.req(), to)
			res := peer.nextResponse(tt.method, 0)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.wantCode)
			}
			for _, h := range tt.wantHdrs {
				if res.GetHeader(h) == nil {
					t.Errorf("response lacks %s:\n%s", h, res)
				}
			}
			if tt.wantCode >= 300 && tt.method == sip.INVITE {
				// Complete the INVITE transaction so it stops retransmitting.
				ack := rawRequest(sip.ACK, phone, from, res.CallID().Value(), "t1", "", res.CSeq().SeqNo, nil)
				ack.ReplaceHeader(sip.HeaderClone(res.To()))
				peer.send(ack, to)
			}
		})
	}
	// Garbage must not hurt the phone: it still answers afterwards.
	peer.sendRaw("\x00\x01 garbage that is not SIP\r\n\r\n", to)
	peer.sendRaw("INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n", to)
	peer.sendRaw(rawRequest(sip.OPTIONS, phone, from, "opt-2", "t1", "", 1, nil).String(), to)
	if res := peer.nextResponse(sip.OPTIONS, 0); res.StatusCode != 200 || res.CallID().Value() != "opt-2" {
		t.Fatalf("after garbage: %d %s for %s", res.StatusCode, res.Reason, res.CallID().Value())
	}
}

// The phone as UAS retransmits its 2xx until the ACK comes (UDP), and a
// re-INVITE moves its media to the new address.
func TestUAS2xxRetransmissionAndReinvite(t *testing.T) {
	peer := newRawPeer(t, "127.0.0.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.0.2:0", Settings: map[string]string{"auto_answer": "1ms"}})
	to, from := phone.Addr(), peer.addr()
	rtpA, rtpB := rtpSocket(t, "127.0.0.4"), rtpSocket(t, "127.0.0.4")
	offer := func(rtp *net.UDPConn, version int) []byte {
		ap := rtp.LocalAddr().(*net.UDPAddr).AddrPort()
		b, err := sdpneg.Build(sdpneg.Description{Addr: ap.Addr(), Port: int(ap.Port()), Codecs: []sdpneg.Codec{sdpneg.PCMA}, SessionID: 9, SessionVersion: uint64(version)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inv := rawRequest(sip.INVITE, phone, from, "uas-1", "caller", "", 1, offer(rtpA, 1))
	peer.send(inv, to)
	ok1 := peer.nextResponse(sip.INVITE, 200)
	ok2 := peer.nextResponse(sip.INVITE, 200)
	tag1, _ := ok1.To().Params.Get("tag")
	tag2, _ := ok2.To().Params.Get("tag")
	if tag1 == "" || tag1 != tag2 {
		t.Fatalf("2xx retransmission changed the To tag: %q %q", tag1, tag2)
	}
	ans, err := sdpneg.Parse(ok1.Body())
	if err != nil {
		t.Fatal(err)
	}
	if ans.Codecs[0].Name != "PCMA" {
		t.Fatalf("answer codec %v, offer was PCMA only", ans.Codecs)
	}
	ack := rawRequest(sip.ACK, phone, from, "uas-1", "caller", tag1, 1, nil)
	peer.send(ack, to)
	st := waitCall(t, phone, "", StateConfirmed)
	readFrom := func(c *net.UDPConn) netip.AddrPort {
		t.Helper()
		buf := make([]byte, 2048)
		c.SetReadDeadline(deadline())
		_, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no RTP on %s: %v", c.LocalAddr(), err)
		}
		return src
	}
	if src := readFrom(rtpA); src.String() != st.LocalSDP {
		t.Fatalf("RTP from %s, phone's SDP said %s", src, st.LocalSDP)
	}

	reinv := rawRequest(sip.INVITE, phone, from, "uas-1", "caller", tag1, 2, offer(rtpB, 2))
	peer.send(reinv, to)
	ok := peer.nextResponse(sip.INVITE, 0)
	if ok.StatusCode != 200 || ok.CSeq().SeqNo != 2 {
		t.Fatalf("re-INVITE answered %d %s with CSeq %d\n%s", ok.StatusCode, ok.Reason, ok.CSeq().SeqNo, ok)
	}
	if ok.CSeq().SeqNo != 2 {
		t.Fatalf("re-INVITE answered with CSeq %d", ok.CSeq().SeqNo)
	}
	peer.send(rawRequest(sip.ACK, phone, from, "uas-1", "caller", tag1, 2, nil), to)
	readFrom(rtpB)
	if st, _ := phone.CallStatus(""); st.RemoteSDP != rtpB.LocalAddr().String() {
		t.Fatalf("remote SDP %s after re-INVITE, want %s", st.RemoteSDP, rtpB.LocalAddr())
	}
	// An in-dialog request with an old CSeq is refused (§12.2.2).
	peer.send(rawRequest(sip.BYE, phone, from, "uas-1", "caller", tag1, 1, nil), to)
	if res := peer.nextResponse(sip.BYE, 0); res.StatusCode != 500 {
		t.Fatalf("stale CSeq BYE: %d", res.StatusCode)
	}
	peer.send(rawRequest(sip.BYE, phone, from, "uas-1", "caller", tag1, 3, nil), to)
	if res := peer.nextResponse(sip.BYE, 0); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	if st := waitCall(t, phone, "", StateTerminated); st.EndReason != "BYE received" {
		t.Fatalf("end %q", st.EndReason)
	}
}

func TestSymmetricRTPOff(t *testing.T) {
	alice, bob := pair(t, func(c *Config) { c.Settings = map[string]string{"symmetric_rtp": "off"} }, nil)
	aRef, bRef := connect(t, alice, bob)
	a, _ := alice.CallStatus(aRef)
	b, _ := bob.CallStatus(bRef)
	seen := b.Media.Received.LastSource
	if seen.String() == a.LocalSDP {
		t.Fatalf("bob sees media from %s, the port alice's SDP advertised: symmetric_rtp off did nothing", seen)
	}
	if seen.String() != a.Media.SendFrom {
		t.Fatalf("bob sees media from %s, alice sends from %s", seen, a.Media.SendFrom)
	}
	// Alice still receives on her SDP port: bob sends where the SDP said.
	if a.Media.Received.Packets == 0 {
		t.Fatal("alice receives nothing")
	}
}

// A stale=true challenge after our answer is a new nonce, not a wrong
// password: the phone retries once with it and registers.
func TestRegisterStaleNonce(t *testing.T) {
	reg := newRawPeer(t, "127.0.0.4")
	phone := startPhone(t, Config{Name: "alice", Password: "secret", Domain: "siplab.test", Listen: "127.0.0.2:0", Proxy: reg.addr()})
	done := make(chan error, 1)
	go func() { done <- phone.Register(testCtx(t)) }()
	chal := func(nonce string, stale bool) sip.Header {
		v := `Digest realm="siplab.test", nonce="` + nonce + `", qop="auth", algorithm=MD5`
		if stale {
			v += ", stale=true"
		}
		return sip.NewHeader("WWW-Authenticate", v)
	}
	r1, src := reg.next(sip.REGISTER)
	if r1.GetHeader("Authorization") != nil {
		t.Fatal("first REGISTER already carries credentials")
	}
	reg.reply(r1, src, 401, "Unauthorized", chal("n1", false))
	r2, src := reg.next(sip.REGISTER)
	if h := r2.GetHeader("Authorization"); h == nil || !strings.Contains(h.Value(), `nonce="n1"`) {
		t.Fatalf("second REGISTER credentials %v", h)
	}
	reg.reply(r2, src, 401, "Unauthorized", chal("n2", true))
	r3, src := reg.next(sip.REGISTER)
	if h := r3.GetHeader("Authorization"); h == nil || !strings.Contains(h.Value(), `nonce="n2"`) {
		t.Fatalf("third REGISTER credentials %v", h)
	}
	if r3.CSeq().SeqNo != r1.CSeq().SeqNo+2 || r3.CallID().Value() != r1.CallID().Value() {
		t.Fatalf("CSeq %d→%d, Call-ID %s→%s: one registration Call-ID, CSeq counting up", r1.CSeq().SeqNo, r3.CSeq().SeqNo, r1.CallID().Value(), r3.CallID().Value())
	}
	reg.reply(r3, src, 200, "OK", sip.NewHeader("Contact", r3.Contact().Value()+";expires=120"),
		sip.NewHeader("Contact", "<sip:alice@198.51.100.9:5060>;expires=30"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := phone.Status().Registration
	if st.State != RegRegistered || len(st.Bindings) != 2 || !st.Bindings[0].Mine || st.Bindings[0].Expires != 120 || st.Bindings[1].Mine {
		t.Fatalf("registration %+v", st)
	}
}

// An INVITE without SDP: the phone offers in its 2xx and takes the answer
// from the ACK (RFC 3264 §4, RFC 3261 §13.2.1), then sends RTP there.
func TestOfferlessInvite(t *testing.T) {
	peer := newRawPeer(t, "127.0.0.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.0.2:0", Settings: map[string]string{"auto_answer": "1ms"}})
	to, from := phone.Addr(), peer.addr()
	peer.send(rawRequest(sip.INVITE, phone, from, "late-1", "caller", "", 1, nil), to)
	ok := peer.nextResponse(sip.INVITE, 200)
	if len(ok.Body()) == 0 {
		t.Fatal("2xx to an offerless INVITE carries no offer")
	}
	rtp := rtpSocket(t, "127.0.0.4")
	tag, _ := ok.To().Params.Get("tag")
	ack := rawRequest(sip.ACK, phone, from, "late-1", "caller", tag, 1, answerSDP(t, ok.Body(), rtp))
	peer.send(ack, to)
	buf := make([]byte, 2048)
	rtp.SetReadDeadline(deadline())
	if _, _, err := rtp.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("no RTP to the address in the ACK's answer: %v", err)
	}
	st, _ := phone.CallStatus("")
	if st.RemoteSDP != rtp.LocalAddr().String() || st.Codec != "PCMU/8000" {
		t.Fatalf("after ACK answer: remote %s codec %s", st.RemoteSDP, st.Codec)
	}
}

// Cancelling before any provisional response: the CANCEL is held (RFC 3261
// §9.1), goes out once the 180 arrives, and matches the INVITE (same
// branch, CSeq number, Request-URI, To without tag); the 487 is ACKed.
func TestCancelBeforeProvisional(t *testing.T) {
	proxy, phone := aliceBehindRawProxy(t, "127.0.0.4", "127.0.0.2:0")
	c, err := phone.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	inv, src := proxy.next(sip.INVITE)
	cancelled := make(chan error, 1)
	go func() { cancelled <- c.Cancel(testCtx(t)) }()
	ringing := sip.NewResponseFromRequest(inv, 180, "Ringing", nil)
	ringing.To().Params.Add("tag", "callee")
	proxy.send(ringing, src)
	cr, _ := proxy.next(sip.CANCEL)
	if cr.CSeq().SeqNo != inv.CSeq().SeqNo || cr.Via().Value() != inv.Via().Value() || cr.Recipient.String() != inv.Recipient.String() {
		t.Fatalf("CANCEL does not match the INVITE:\n%s\nINVITE:\n%s", cr, inv)
	}
	if tag, _ := cr.To().Params.Get("tag"); tag != "" {
		t.Fatalf("CANCEL To carries a tag %q: it must copy the INVITE's To", tag)
	}
	proxy.reply(cr, src, 200, "OK")
	term := sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
	term.To().Params.Add("tag", "callee")
	proxy.send(term, src)
	if ack, _ := proxy.next(sip.ACK); ack.CSeq().SeqNo != inv.CSeq().SeqNo {
		t.Fatalf("ACK for 487 with CSeq %d", ack.CSeq().SeqNo)
	}
	if err := <-cancelled; err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.Code != 487 || st.EndReason != "CANCEL sent, 487 received" {
		t.Fatalf("call %+v", st)
	}
}
