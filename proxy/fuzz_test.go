package proxy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/torturetest"
	"github.com/siplab/siplab/sip/location"
)

// FuzzProxyRequest: whatever arrives, the proxy decides without panicking
// (every setting combination), builds its forwarded requests and local
// answers, and the running proxy fed the same bytes keeps answering.
func FuzzProxyRequest(f *testing.F) {
	for _, m := range torturetest.Load(f) {
		f.Add(m.Raw)
	}
	ph := &phone{addr: netip.MustParseAddrPort("127.0.0.2:5062")}
	for _, method := range []string{"INVITE", "REGISTER", "ACK", "CANCEL", "BYE", "OPTIONS"} {
		m := ph.newMsg(method, "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
		m.routes = []string{"<sip:127.0.0.1:5060;lr>", "<sip:10.0.0.9;lr;transport=tcp>"}
		f.Add([]byte(m.String()))
		m.toTag, m.ruri = "x", "sip:127.0.0.1"
		f.Add([]byte(m.String()))
	}

	loc := newMemLocation("alice", "bob", "carol")
	loc.bind("bob", "sip:bob@192.0.2.7:5060;transport=tcp", netip.MustParseAddrPort("203.0.113.9:4000"))
	loc.bind("bob", "sip:bob@[::1]:5070", netip.AddrPort{})
	loc.mu.Lock()
	loc.users["carol"] = []location.Binding{
		{ContactURI: "not a uri"},
		{ContactURI: "sip:carol@198.51.100.1", Path: []string{"<sip:127.0.0.1:5060;lr>", "sip:10.0.0.5:5080;lr"}},
	}
	loc.mu.Unlock()
	p, px := startProxy(f, Config{Location: loc, Auth: newAuth(f), AuthInvites: true, AuthOther: true, Registrar: "127.0.0.1:9"})
	in := p.eps[0]
	live, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(px))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		live.Close()
		time.Sleep(50 * time.Millisecond) // let the last inputs be handled
		if err := torturetest.Alive(px); err != nil {
			f.Errorf("proxy stopped answering: %v", err)
		}
	})
	settings := []Settings{
		DefaultSettings(),
		{RPort: RPortIgnore, ContactFixup: FixupOff},
		{RPort: RPortForce, Received: true, ContactFixup: FixupOn, RecordRoute: true},
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		live.Write(data)
		req := torturetest.Request(data)
		if req == nil {
			return
		}
		req.SetSource("127.0.0.2:5062")
		req.SetTransport("UDP")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, s := range settings {
			d := p.decide(ctx, in, req, s)
			if d.answer != nil && (d.answer.StatusCode < 100 || d.answer.StatusCode > 699) {
				t.Fatalf("answer with status %d", d.answer.StatusCode)
			}
			if d.answer != nil && d.targets != nil {
				t.Fatal("both an answer and targets")
			}
			for _, tg := range d.targets {
				_ = p.build(d.w, tg, in, in, s, branchPrefix(d.hash)+"f", tg.path).String()
			}
			if req.IsAck() && len(d.targets) > 0 {
				_ = ackBranch(d)
			}
			_ = p.responseDest(req, s.RPort)
		}
	})
}
