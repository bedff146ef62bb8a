package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// A REGISTER with nine Contacts of ~110 characters through the proxy to
// the real registrar: the forwarded REGISTER outgrows 1300 bytes (it goes
// over TCP, RFC 3261 §18.1.1) and so does the 200 OK, which must still
// reach the UA over UDP (§18.2.2) listing all nine bindings.
func TestNineBindingsThroughProxy(t *testing.T) {
	reg, _ := startRegistrar(t)
	// The same registrar behind a second socket that notes how each
	// REGISTER arrived.
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan string, 4)
	ep.Server.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		arrived <- fmt.Sprintf("%s %d bytes", req.Transport(), len(req.String()))
		tx.Respond(reg.Handle(context.Background(), req))
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ep.Close() })
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, px := startProxy(t, Config{Location: reg, Registrar: ep.Addr().String()})
	ph := newPhone(t, "127.0.0.3")
	m := ph.newMsg("REGISTER", "sip:"+testDomain, "alice@"+testDomain, "alice@"+testDomain)
	m.contact = ""
	for i := 1; i <= 9; i++ {
		m.extra = append(m.extra, fmt.Sprintf("Contact: <sip:alice-device-%d@%s;transport=udp;line=%s>;expires=300",
			i, ph.addr, strings.Repeat(string(rune('a'+i)), 40)))
	}
	ph.send(px, m)
	chal := ph.final(sip.REGISTER)
	mustCode(t, chal, 401)
	ok := withDigest(t, ph, px, m, chal, "alice", "alicepw")
	mustCode(t, ok, 200)
	if n := len(ok.GetHeaders("Contact")); n != 9 {
		t.Fatalf("200 OK lists %d bindings, want 9:\n%s", n, ok)
	}
	if size := len(ok.String()); size <= 1300 {
		t.Fatalf("200 OK is only %d bytes: the test proves nothing", size)
	}
	if bs, err := reg.Lookup(t.Context(), "sip:alice@"+testDomain); err != nil || len(bs) != 9 {
		t.Fatalf("registrar holds %d bindings (%v), want 9", len(bs), err)
	}
	<-arrived // the unauthenticated one
	if got := <-arrived; !strings.HasPrefix(got, "TCP ") {
		t.Fatalf("the forwarded REGISTER arrived over %s, want TCP (it is over 1300 bytes)", got)
	}
}
