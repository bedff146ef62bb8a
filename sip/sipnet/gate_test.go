package sipnet_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

func udpRequest(method, callID, toTag string, from *net.UDPConn) string {
	to := "<sip:b@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return method + " sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + from.LocalAddr().String() + ";branch=z9hG4bK-" + callID + ";rport\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 " + method + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// The overload gate: requests that waited in the socket longer than
// MaxQueueDelay while the daemon was busy — here: not reading at all yet —
// are refused with 503 + Retry-After when they would start something new,
// and served when they belong to a dialog; fresh requests are served.
func TestOverloadGate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("arrival timestamps (SO_TIMESTAMPNS) are Linux's")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", MaxQueueDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	// The first socket asking for arrival stamps switches them on in the
	// kernel asynchronously; a datagram arriving before that is stamped
	// when it is read.
	time.Sleep(100 * time.Millisecond)
	served := make(chan string, 8)
	handler := func(req *sip.Request, tx sip.ServerTransaction) {
		served <- req.CallID().Value()
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	ep.Server.OnOptions(handler)
	ep.Server.OnBye(handler)
	ep.Server.OnInvite(handler)
	ep.Server.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { served <- req.CallID().Value() })

	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(m string) {
		if _, err := c.WriteToUDPAddrPort([]byte(m), ep.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// Queued before the endpoint reads: they wait 400 ms. The INVITE is
	// there twice, as a caller retransmits it after T1: one 503 answers
	// both copies.
	send(udpRequest("INVITE", "late-invite", "", c))
	send(udpRequest("INVITE", "late-invite", "", c))
	send(udpRequest("BYE", "late-bye", "dialog", c))
	send(udpRequest("ACK", "late-ack", "", c))
	time.Sleep(400 * time.Millisecond)
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the queue is drained
	send(udpRequest("OPTIONS", "fresh", "", c))

	got := map[string]string{} // Call-ID → status line
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	var retryAfter string
	for len(got) < 3 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("responses so far %v: %v", got, err)
		}
		res, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		r := res.(*sip.Response)
		if r.StatusCode == 100 {
			continue
		}
		got[r.CallID().Value()] = r.StartLine()
		if h := r.GetHeader("Retry-After"); h != nil && r.CallID().Value() == "late-invite" {
			retryAfter = h.Value()
		}
	}
	want := map[string]string{
		"late-invite": "SIP/2.0 503 Service Unavailable",
		"late-bye":    "SIP/2.0 200 OK",
		"fresh":       "SIP/2.0 200 OK",
	}
	for id, line := range want {
		if got[id] != line {
			t.Errorf("%s: got %q, want %q (all: %v)", id, got[id], line, got)
		}
	}
	if retryAfter == "" {
		t.Error("the 503 has no Retry-After")
	}
	// The ACK has no answer to wait for: collect what was handled until it
	// shows up.
	var handled []string
	for !strings.Contains(strings.Join(handled, " "), "late-ack") {
		select {
		case id := <-served:
			handled = append(handled, id)
		case <-time.After(3 * time.Second):
			t.Fatalf("the queued ACK never reached the handler; handled %v", handled)
		}
	}
	for _, id := range handled {
		if id == "late-invite" {
			t.Errorf("the refused INVITE reached the handler: %v", handled)
		}
	}
	if ep.Shed() != 1 {
		t.Errorf("Shed() = %d, want 1 (a retransmission of a refused INVITE is dropped, not answered again)", ep.Shed())
	}
}
