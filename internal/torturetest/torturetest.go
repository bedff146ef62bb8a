// Package torturetest throws the RFC 4475 torture messages at a running SIP
// daemon over real sockets and checks that it refuses the invalid ones and
// survives them all. Every daemon's tests call Run against itself.
package torturetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Dir is the corpus location, found relative to this source file so tests
// in any package can use it.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "rfc4475")
}

// Message is one torture message.
type Message struct {
	Name    string // e.g. "invalid/zeromf.dat"
	Valid   bool
	Raw     []byte
	Request bool
}

// Load reads the 49 messages (the unnumbered extra one is left out, as the
// RFC describes no expected behaviour for it).
func Load(t testing.TB) []Message {
	t.Helper()
	var out []Message
	for _, class := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(Dir(), class, "*.dat"))
		if err != nil || len(files) == 0 {
			t.Fatalf("torture corpus missing under %s: %v", Dir(), err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, Message{
				Name:    class + "/" + filepath.Base(f),
				Valid:   class == "valid",
				Raw:     raw,
				Request: !bytes.HasPrefix(raw, []byte("SIP/")),
			})
		}
	}
	if len(out) != 49 {
		t.Fatalf("torture corpus has %d messages, want 49", len(out))
	}
	return out
}

// Result is what the daemon answered to one message over TCP.
type Result struct {
	Message Message
	// Code is the status code of the first final response, 0 if none came.
	Code int
}

// Run sends every request to the daemon at target over its own TCP
// connection, where the answer comes back on the connection, then every
// message over UDP. It fails t if an invalid request is accepted with a 2xx, or
// if the daemon stops answering OPTIONS afterwards. It returns the TCP
// results so callers can assert daemon-specific codes.
func Run(t *testing.T, target netip.AddrPort) map[string]Result {
	t.Helper()
	msgs := Load(t)

	results := make(map[string]Result, len(msgs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range msgs {
		if !m.Request {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := sendTCP(t, target, m.Raw)
			mu.Lock()
			results[m.Name] = Result{Message: m, Code: code}
			mu.Unlock()
		}()
	}
	wg.Wait()

	// UDP after TCP: the copies share branches, and a UDP server transaction
	// lingers (Timer J) where a TCP one ends at once, so the other order
	// would turn the TCP copies into retransmissions.
	udp, err := net.Dial("udp", target.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := udp.Write(m.Raw); err != nil {
			t.Fatalf("udp send %s: %v", m.Name, err)
		}
	}
	udp.Close()
	for _, r := range results {
		if !r.Message.Valid && r.Code >= 200 && r.Code < 300 {
			t.Errorf("%s: invalid request accepted with %d", r.Message.Name, r.Code)
		}
	}
	if err := Alive(target); err != nil {
		t.Fatalf("daemon did not survive the torture messages: %v", err)
	}
	return results
}

func sendTCP(t *testing.T, target netip.AddrPort, raw []byte) int {
	conn, err := net.DialTimeout("tcp", target.String(), 2*time.Second)
	if err != nil {
		t.Errorf("tcp dial: %v", err)
		return 0
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	if _, err := conn.Write(raw); err != nil {
		return 0
	}
	return readFinal(bufio.NewReader(conn))
}

// readFinal reads responses until a final one or the deadline.
func readFinal(r *bufio.Reader) int {
	for {
		code, clen, err := readHead(r)
		if err != nil {
			return 0
		}
		if _, err := io.CopyN(io.Discard, r, int64(clen)); err != nil {
			return 0
		}
		if code >= 200 {
			return code
		}
	}
}

func readHead(r *bufio.Reader) (code, clen int, err error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, 0, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if code == 0 {
				continue // keep-alive CRLF
			}
			return code, clen, nil
		}
		if code == 0 {
			if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &code); err != nil {
				return 0, 0, fmt.Errorf("not a response: %q", line)
			}
			continue
		}
		name, val, _ := strings.Cut(line, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); n == "content-length" || n == "l" {
			fmt.Sscanf(strings.TrimSpace(val), "%d", &clen)
		}
	}
}

// Alive sends a well-formed OPTIONS over TCP and expects any final response.
func Alive(target netip.AddrPort) error {
	conn, err := net.DialTimeout("tcp", target.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP %s;branch=%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:torture@%s>;tag=alive\r\nTo: <sip:%s>\r\n"+
		"Call-ID: alive-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		target, local, sip.GenerateBranch(), local.Addr(), target, time.Now().UnixNano())
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	if code := readFinal(bufio.NewReader(conn)); code == 0 {
		return fmt.Errorf("no answer to OPTIONS from %s", target)
	}
	return nil
}
