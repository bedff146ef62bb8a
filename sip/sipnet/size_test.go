package sipnet_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// seenRequest is what a test server learnt about one request.
type seenRequest struct {
	transport string
	via       string
	size      int
}

// startRecorder starts an endpoint answering OPTIONS with 200 and
// reporting how each one arrived.
func startRecorder(t *testing.T, ctx context.Context, cfg sipnet.Config) (*sipnet.Endpoint, <-chan seenRequest) {
	t.Helper()
	ep, err := sipnet.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	seen := make(chan seenRequest, 4)
	ep.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		seen <- seenRequest{transport: req.Transport(), via: req.Via().Value(), size: len(req.String())}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ep, seen
}

// largeOptions is an OPTIONS of about size bytes to the endpoint.
func largeOptions(to *sipnet.Endpoint, size int) *sip.Request {
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: to.Addr().Addr().String(), Port: int(to.Addr().Port())})
	if size > 0 {
		req.AppendHeader(sip.NewHeader("X-Padding", strings.Repeat("p", size)))
	}
	return req
}

// RFC 3261 §18.1.1 through a daemon's own client: a request over 1300
// bytes goes over TCP to the same address, its Via saying TCP; a small one
// stays on UDP; a peer without TCP still gets the large one, over UDP; a
// sender that turned the switch off (StayOnUDP) sends it over UDP to a
// peer that takes TCP.
func TestLargeRequestsGoOverTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	both, seenBoth := startRecorder(t, ctx, sipnet.Config{Listen: "127.0.0.1:0"})
	udpOnly, seenUDP := startRecorder(t, ctx, sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{sipnet.UDP}})
	client, c := startUDPClient(t, ctx)
	for _, tt := range []struct {
		name      string
		to        *sipnet.Endpoint
		seen      <-chan seenRequest
		padding   int
		stayUDP   bool
		transport string
	}{
		{"small over UDP", both, seenBoth, 0, false, "UDP"},
		{"large over TCP", both, seenBoth, 2000, false, "TCP"},
		{"large, switch off, over UDP", both, seenBoth, 2000, true, "UDP"},
		{"large over TCP again", both, seenBoth, 2000, false, "TCP"},
		{"large to a peer without TCP", udpOnly, seenUDP, 2000, false, "UDP"},
		{"again, straight to UDP", udpOnly, seenUDP, 3000, false, "UDP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rctx := ctx
			if tt.stayUDP {
				rctx = sipnet.StayOnUDP(ctx)
			}
			res, err := c.Do(rctx, largeOptions(tt.to, tt.padding))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 {
				t.Fatalf("got %d", res.StatusCode)
			}
			got := <-tt.seen
			if got.transport != tt.transport || !strings.HasPrefix(got.via, "SIP/2.0/"+tt.transport+" "+client.Addr().String()) {
				t.Fatalf("%d-byte request arrived over %s with Via %q, want %s from %s", got.size, got.transport, got.via, tt.transport, client.Addr())
			}
			if tt.padding > 0 && got.size <= sipnet.MaxUDPRequest {
				t.Fatalf("request was only %d bytes", got.size)
			}
		})
	}
}

// RFC 3261 §18.2.2: a response goes back over UDP whatever its size.
func TestLargeResponseOverUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep := start(t, "127.0.0.1:0")
	ep.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("X-Padding", strings.Repeat("p", 4000)))
		tx.Respond(res)
	})
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ua, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	req := "OPTIONS sip:" + ep.Addr().String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + ua.LocalAddr().String() + ";branch=z9hG4bKbig1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: big-response\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := ua.WriteTo([]byte(req), net.UDPAddrFromAddrPort(ep.Addr())); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	ua.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := ua.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 OK\r\n") || n < 4000 {
		t.Fatalf("got %d bytes: %.80q", n, buf[:n])
	}
}
