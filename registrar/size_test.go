package registrar

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// nineContacts are the Contact lines of a UA registering nine devices,
// ~110 characters each: the 200 OK lists them all and outgrows 1300 bytes.
func nineContacts(user string, at netip.AddrPort) []string {
	var out []string
	for i := 1; i <= 9; i++ {
		uri := fmt.Sprintf("sip:%s-device-%d@%s;transport=udp;line=%s", user, i, at, strings.Repeat(string(rune('a'+i)), 40))
		out = append(out, fmt.Sprintf("Contact: <%s>;expires=300", uri))
	}
	return out
}

// A REGISTER with nine Contacts from a raw UDP socket: the 200 OK listing
// the nine bindings (~1.9 kB) must reach the UA over UDP (RFC 3261
// §18.2.2), not just be stored while the UA retransmits into a 401.
func TestNineBindingsAnsweredOverUDP(t *testing.T) {
	r := newRegistrar(t, baseConfig(t, newClock()))
	reg := net.UDPAddrFromAddrPort(serveRegistrar(t, r))
	ua, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	local := ua.LocalAddr().(*net.UDPAddr).AddrPort()
	exchange := func(cseq int, auth string) *sip.Response {
		t.Helper()
		msg := "REGISTER sip:" + domain + " SIP/2.0\r\n" +
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-nine-%d\r\n", local, cseq) +
			"From: <sip:alice@" + domain + ">;tag=nine\r\nTo: <sip:alice@" + domain + ">\r\n" +
			"Call-ID: nine-bindings\r\n" + fmt.Sprintf("CSeq: %d REGISTER\r\n", cseq) + "Max-Forwards: 70\r\n" +
			strings.Join(nineContacts("alice", local), "\r\n") + "\r\n" + auth + "Content-Length: 0\r\n\r\n"
		if _, err := ua.WriteToUDP([]byte(msg), reg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		ua.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := ua.Read(buf)
		if err != nil {
			t.Fatalf("CSeq %d: no response over UDP: %v", cseq, err)
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return m.(*sip.Response)
	}
	chal := exchange(1, "")
	if chal.StatusCode != 401 {
		t.Fatalf("first REGISTER: %d", chal.StatusCode)
	}
	c, err := digest.ParseChallenge(chal.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + domain, Username: "alice", Password: "secret", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	ok := exchange(2, "Authorization: "+cred.String()+"\r\n")
	if ok.StatusCode != 200 {
		t.Fatalf("authenticated REGISTER: %d %s", ok.StatusCode, ok.Reason)
	}
	if n := len(contacts(ok)); n != 9 {
		t.Fatalf("200 OK lists %d bindings, want 9", n)
	}
	if size := len(ok.String()); size <= 1300 {
		t.Fatalf("200 OK is only %d bytes: the test proves nothing", size)
	}
}
