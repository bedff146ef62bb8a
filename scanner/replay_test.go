package scanner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// registerOnce registers alice with the right password from conn and
// returns the authorized REGISTER as it went on the wire (what an
// eavesdropper captures).
func registerOnce(t *testing.T, conn net.PacketConn, target *net.UDPAddr) []byte {
	t.Helper()
	local := conn.LocalAddr().String()
	callID := token()
	req := func(cseq int, extra string) []byte {
		return []byte(fmt.Sprintf("REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:alice@siplab.test>;tag=a1\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
			"Contact: <sip:alice@%s>\r\nExpires: 60\r\n%sContent-Length: 0\r\n\r\n", local, token(), callID, cseq, local, extra))
	}
	exchange := func(msg []byte) *sip.Response {
		t.Helper()
		if _, err := conn.WriteTo(msg, target); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			if res, ok := m.(*sip.Response); err == nil && ok && res.StatusCode >= 200 {
				return res
			}
		}
	}
	res := exchange(req(1, ""))
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:siplab.test", Username: "alice", Password: "s3cret", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	authorized := req(2, "Authorization: "+cred.String()+"\r\n")
	if res := exchange(authorized); res.StatusCode != 200 {
		t.Fatalf("the honest REGISTER got %d", res.StatusCode)
	}
	return authorized
}

func TestReplayedCredentialsAreRefusedByTheRealRegistrar(t *testing.T) {
	target := startRegistrar(t)
	captured := registerOnce(t, socket(t), net.UDPAddrFromAddrPort(target))
	rep, err := Run(context.Background(), socket(t), Config{Target: target, Mode: ModeReplay, Message: captured,
		Count: 2, Rate: 50, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Statuses[200] != 0 || rep.Statuses[401] != 2 || rep.Stale != 2 {
		t.Errorf("replay report %+v: want two 401 stale=true, no 200", rep)
	}
	var out strings.Builder
	rep.Write(&out)
	if !strings.Contains(out.String(), "replay refused") {
		t.Errorf("report does not say the replay was refused:\n%s", out.String())
	}
}

func TestReplayRequestIsANewTransactionWithTheAttackersContact(t *testing.T) {
	captured := "REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bKold;rport\r\n" +
		"From: <sip:alice@siplab.test>;tag=x\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: c1@host\r\nCSeq: 7 REGISTER\r\n" +
		"Contact: <sip:alice@192.168.1.50:5060>\r\nAuthorization: Digest username=\"alice\", nonce=\"n\", response=\"r\"\r\nContent-Length: 0\r\n\r\n"
	s := &run{cfg: Config{Message: []byte(captured)}}
	s.local = netip.MustParseAddrPort("203.0.113.66:40000")
	got, callID, err := s.replayRequest()
	if err != nil {
		t.Fatal(err)
	}
	msg := string(got)
	for _, want := range []string{"CSeq: 8 REGISTER", "Contact: <sip:alice@203.0.113.66:40000>", "Via: SIP/2.0/UDP 203.0.113.66:40000;branch=z9hG4bK",
		`Authorization: Digest username="alice", nonce="n", response="r"`, "Call-ID: c1@host"} {
		if !strings.Contains(msg, want) {
			t.Errorf("replayed request lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "z9hG4bKold") || strings.Contains(msg, "192.168.1.50") || callID != "c1@host" {
		t.Errorf("replayed request keeps the victim's Via or Contact:\n%s", msg)
	}
	for _, bad := range []string{"SIP/2.0 200 OK\r\n\r\n", "REGISTER sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n", "no end of headers"} {
		s.cfg.Message = []byte(bad)
		if _, _, err := s.replayRequest(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%q: err %v, want ErrBadConfig", bad, err)
		}
	}
}
