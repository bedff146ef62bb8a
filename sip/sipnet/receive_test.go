package sipnet_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func options(callID, requestLine string) string {
	return requestLine + "\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-" + callID + "\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// statusLines reads responses off a stream until it ends or stays quiet.
func statusLines(t *testing.T, conn net.Conn, want int) []string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	var out []string
	for len(out) < want {
		line, err := r.ReadString('\n')
		if err != nil {
			if err != io.EOF {
				t.Logf("read: %v", err)
			}
			return out
		}
		if strings.HasPrefix(line, "SIP/2.0 ") {
			out = append(out, strings.TrimSpace(line)+" "+callIDOf(t, r))
		}
	}
	return out
}

func callIDOf(t *testing.T, r *bufio.Reader) string {
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "\r\n" {
			return ""
		}
		if v, ok := strings.CutPrefix(line, "Call-ID: "); ok {
			cid := strings.TrimSpace(v)
			for {
				if l, err := r.ReadString('\n'); err != nil || l == "\r\n" {
					return cid
				}
			}
		}
	}
}

// On a TCP stream the receive path frames by Content-Length: a message
// sipgo cannot parse is refused on the connection and the next one is
// still read; a message whose length cannot be read is refused, and the
// answers to what came before it still go out.
func TestStreamReceivePath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep := start(t, "127.0.0.1:0")
	ep.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		time.Sleep(50 * time.Millisecond) // answers after the stream broke
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ep.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	target := "OPTIONS sip:" + ep.Addr().String() + " SIP/2.0"

	c := dial()
	io.WriteString(c, options("bad", target+"  ")+"\r\n\r\n"+options("good", target))
	got := statusLines(t, c, 2)
	if len(got) != 2 || !contains(got, "SIP/2.0 400 Whitespace at End of Request-Line bad") || !contains(got, "SIP/2.0 200 OK good") {
		t.Fatalf("got %q", got)
	}

	c = dial()
	noLength := strings.Replace(options("nolen", target), "Content-Length: 0\r\n", "", 1)
	io.WriteString(c, options("first", target)+noLength+"garbage that cannot be framed\r\n\r\n")
	got = statusLines(t, c, 2)
	if len(got) != 2 || !contains(got, "SIP/2.0 400 Missing Content-Length nolen") || !contains(got, "SIP/2.0 200 OK first") {
		t.Fatalf("got %q", got)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
