package exercise

import (
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

func sipPacket(at time.Time, src, dst, msg string) capture.Packet {
	return capture.Packet{Time: at, Iface: proxyEdge, Kind: capture.KindSIP, Transport: "udp",
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Payload: []byte(msg)}
}

func registerMsg(branch, auth string) string {
	m := "REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=" + branch + ";rport\r\n" +
		"From: <sip:alice@siplab.test>;tag=1\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\n"
	if auth != "" {
		m += "Authorization: " + auth + "\r\n"
	}
	return m + "Content-Length: 0\r\n\r\n"
}

func response(branch, status, extra string) string {
	return "SIP/2.0 " + status + "\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=" + branch + "\r\nCall-ID: c1\r\n" + extra + "Content-Length: 0\r\n\r\n"
}

func TestFindReplay(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const (
		alice = "203.0.113.2:5060"
		proxy = "203.0.113.10:5060"
		atk   = attackerIP + ":40000"
		cred  = `Digest username="alice", nonce="n1", nc=00000001, response="abc"`
	)
	honest := sipPacket(t0, alice, proxy, registerMsg("z9hG4bKa", cred))
	retrans := sipPacket(t0.Add(500*time.Millisecond), alice, proxy, registerMsg("z9hG4bKa", cred))
	replay := sipPacket(t0.Add(2*time.Second), atk, proxy, registerMsg("z9hG4bKx", cred))
	refused := sipPacket(t0.Add(2100*time.Millisecond), proxy, atk, response("z9hG4bKx", "401 Unauthorized", `WWW-Authenticate: Digest realm="siplab.test", nonce="n2", stale=true`+"\r\n"))
	trying := sipPacket(t0.Add(2050*time.Millisecond), proxy, atk, response("z9hG4bKx", "100 Trying", ""))
	tests := []struct {
		name                  string
		pks                   []capture.Packet
		since                 time.Time
		wantReplay, wantReply bool
	}{
		{"no replay: a retransmission keeps its branch", []capture.Packet{honest, retrans}, t0, false, false},
		{"replay and its final answer", []capture.Packet{honest, replay, trying, refused}, t0, true, true},
		{"replay not answered", []capture.Packet{honest, replay}, t0, true, false},
		{"replay before the exercise", []capture.Packet{honest, replay, refused}, t0.Add(time.Minute), false, false},
		{"new credentials are no replay", []capture.Packet{honest, sipPacket(t0.Add(time.Second), atk, proxy, registerMsg("z9hG4bKy", `Digest nonce="n9"`))}, t0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp, ans, orig := findReplay(&capture.Trace{SIP: tt.pks}, tt.since)
			if (rp != nil) != tt.wantReplay || (ans != nil) != tt.wantReply {
				t.Fatalf("replay %v answer %v, want %v %v", rp != nil, ans != nil, tt.wantReplay, tt.wantReply)
			}
			if rp != nil && (orig == nil || orig.Src.String() != alice) {
				t.Errorf("original %+v", orig)
			}
			if ans != nil && staleNote(ans.Header("WWW-Authenticate")) == "" {
				t.Errorf("stale=true not recognised in %q", ans.Header("WWW-Authenticate"))
			}
		})
	}
	if got := LastAuthorized(&capture.Trace{SIP: []capture.Packet{honest, replay}}, "alice"); got == nil || got.Src.String() != alice {
		t.Errorf("LastAuthorized picked %+v, want alice's own REGISTER", got)
	}
}

func TestDigestParamAndSDPLines(t *testing.T) {
	h := `Digest username="alice", realm="siplab.test", nonce="abc,def", nc=00000002, stale=TRUE`
	for k, want := range map[string]string{"username": "alice", "nc": "00000002", "stale": "TRUE", "opaque": ""} {
		if got := digestParam(h, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	msg := []byte("INVITE sip:bob@x SIP/2.0\r\nCall-ID: 1\r\n\r\nv=0\r\no=alice 1 1 IN IP4 192.168.1.50\r\nc=IN IP4 203.0.113.2\r\n")
	if o, c := lastAddr(sdpLine(msg, "o=")), lastAddr(sdpLine(msg, "c=")); o != "192.168.1.50" || c != "203.0.113.2" {
		t.Errorf("o=%q c=%q", o, c)
	}
}
