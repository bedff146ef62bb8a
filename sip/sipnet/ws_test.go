package sipnet

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// SplitWebSocket sends WebSocket upgrades one way and every other HTTP
// request the other, each with the bytes it read replayed; a connection
// whose head is not HTTP or never ends is closed.
func TestSplitWebSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws, web := SplitWebSocket(ln)
	defer ws.Close()
	for _, tc := range []struct {
		name, head string
		want       net.Listener
	}{
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n", ws},
		{"upgrade lower case", "GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\n\r\n", ws},
		{"page", "GET /phone/ HTTP/1.1\r\nHost: x\r\n\r\n", web},
		{"post", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", web},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// in two pieces: the head is read until its blank line
			half := len(tc.head) / 2
			c.Write([]byte(tc.head[:half]))
			time.Sleep(20 * time.Millisecond)
			c.Write([]byte(tc.head[half:]))
			got, err := tc.want.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			buf := make([]byte, len(tc.head))
			if _, err := io.ReadFull(got, buf); err != nil || string(buf) != tc.head {
				t.Fatalf("replayed %q, %v; want %q", buf, err, tc.head)
			}
		})
	}
	for _, tc := range []struct{ name, head string }{
		{"not http", "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4\r\n\r\n"},
		{"endless head", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxUpgradeHead)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte(tc.head))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := bufio.NewReader(c).ReadByte(); err == nil {
				t.Fatal("got an answer, want the connection closed")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection left open")
			}
		})
	}
}
