// Package torturetest throws the RFC 4475 torture messages at a running SIP
// daemon over real sockets (UDP and TCP) and checks each answer against the
// daemon's column of one table (answers.go): the status code it must send
// for each of the 49 messages, or silence. Every daemon's tests call Check
// against itself.
package torturetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
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
	Name  string // e.g. "invalid/zeromf.dat"
	Valid bool
	// Accept: valid, or the RFC 2543 INVITE an element should still take
	// (RFC 4475 §3.4.1) although the corpus files it under invalid/.
	Accept  bool
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
				Accept:  class == "valid" || filepath.Base(f) == "inv2543.dat",
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

// Silent is the expectation "no response": a response in the corpus, an
// ACK, or a request no answer can be addressed to.
const Silent = 0

// MinAnswered is how many of the 49 messages every daemon must answer over
// UDP (Kamailio 5.6.3 answers 32).
const MinAnswered = 32

// Result is what a daemon answered to one message over each transport:
// the status code of the first final response, else of the last
// provisional one other than 100, else Silent.
type Result struct {
	Message Message
	UDP     int
	TCP     int
	// The reason phrases that came with them.
	UDPReason, TCPReason string
}

// Results are keyed by message name, e.g. "invalid/clerr.dat".
type Results map[string]Result

// Answered counts the messages answered over UDP.
func (rs Results) Answered() (udp, tcp int) {
	for _, r := range rs {
		if r.UDP != Silent {
			udp++
		}
		if r.TCP != Silent {
			tcp++
		}
	}
	return udp, tcp
}

// Stream is what a message answered with code over UDP gets over TCP,
// where framing is by Content-Length (RFC 3261 §18.3) and the datagram's
// edges do not exist.
func Stream(name string, udp int) int {
	switch name {
	case "invalid/clerr.dat":
		return Silent // the stream waits for the body the message promises
	case "invalid/baddn.dat":
		return Silent // no empty line ends its headers: it never ends
	case "invalid/inv2543.dat":
		return 400 // no Content-Length, which a stream must carry
	case "invalid/mcl01.dat":
		return 400 // two Content-Lengths: the stream cannot be framed
	}
	return udp
}

// Check throws the corpus at daemons from start over UDP and over TCP and
// checks every answer against d's column of the answers table, which lists
// all 49 messages with the UDP answer (Stream derives the TCP one). Each
// transport gets its own
// daemon, so the two copies of a message never meet in one transaction
// table. Check also fails t when an invalid message gets a 2xx, when
// fewer than MinAnswered are answered over UDP, or when a daemon stops
// answering OPTIONS afterwards.
func Check(t *testing.T, start func(t *testing.T) netip.AddrPort, d Daemon) Results {
	t.Helper()
	want := Want(d)
	msgs := Load(t)
	if len(want) != len(msgs) && os.Getenv("TORTURE_TABLE") == "" {
		t.Fatalf("the table lists %d messages, the corpus has %d", len(want), len(msgs))
	}
	results := make(Results, len(msgs))
	for _, m := range msgs {
		if _, ok := want[m.Name]; !ok && os.Getenv("TORTURE_TABLE") == "" {
			t.Fatalf("the table misses %s", m.Name)
		}
		results[m.Name] = Result{Message: m}
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			target := start(t)
			got := throw(t, target, transport, msgs)
			for name, a := range got {
				r := results[name]
				if transport == "udp" {
					r.UDP, r.UDPReason = a.code, a.reason
				} else {
					r.TCP, r.TCPReason = a.code, a.reason
				}
				results[name] = r
			}
			if err := Alive(target); err != nil {
				t.Fatalf("daemon did not survive the torture messages: %v", err)
			}
		})
	}
	for _, m := range msgs {
		r := results[m.Name]
		if w := want[m.Name]; r.UDP != w {
			t.Errorf("%s over UDP: got %s, want %s", m.Name, show(r.UDP), show(w))
		}
		if w := Stream(m.Name, want[m.Name]); r.TCP != w {
			t.Errorf("%s over TCP: got %s, want %s", m.Name, show(r.TCP), show(w))
		}
		if !m.Accept && ((r.UDP >= 200 && r.UDP < 300) || (r.TCP >= 200 && r.TCP < 300)) {
			t.Errorf("%s: invalid request accepted (%d over UDP, %d over TCP)", m.Name, r.UDP, r.TCP)
		}
	}
	if os.Getenv("TORTURE_TABLE") != "" {
		t.Logf("observed table:\n%s", results.table())
	}
	udp, tcp := results.Answered()
	t.Logf("answered %d of %d over UDP, %d over TCP", udp, len(msgs), tcp)
	if udp < MinAnswered {
		t.Errorf("answered %d over UDP, want at least %d", udp, MinAnswered)
	}
	return results
}

// table prints the observed UDP answers, to fill a daemon's column of the
// answers table from (TORTURE_TABLE=1 go test -run Torture -v).
func (rs Results) table() string {
	names := make([]string, 0, len(rs))
	for n := range rs {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		r := rs[n]
		c := show(r.UDP)
		if r.UDP == Silent {
			c = "torturetest.Silent"
		}
		fmt.Fprintf(&b, "\t%q: %s, // tcp %s | %s\n", n, c, show(r.TCP), r.UDPReason)
	}
	return b.String()
}

func show(code int) string {
	if code == Silent {
		return "silence"
	}
	return strconv.Itoa(code)
}

// wait is how long a message's answer may take.
const wait = 1500 * time.Millisecond

// throw sends every message over its own socket or connection, all at
// once, and collects the answers.
func throw(t *testing.T, target netip.AddrPort, transport string, msgs []Message) map[string]answer {
	t.Helper()
	got := make(map[string]answer, len(msgs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := Copy(m, transport)
			var a answer
			var err error
			if transport == "udp" {
				a, err = sendUDP(target, raw)
			} else {
				a, err = sendTCP(target, raw)
			}
			if err != nil {
				t.Errorf("%s over %s: %v", m.Name, transport, err)
			}
			mu.Lock()
			got[m.Name] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

var cookieBranch = regexp.MustCompile(`(?i)(branch\s*=\s*)(z9hG4bK[^\s;,]+)`)

// Copy is the message as thrown over transport: byte for byte, except that
// an RFC 3261 branch in the top Via gets the message's name and the
// transport appended. The corpus reuses branches (cparam01 and cparam02
// share branch, sent-by and method), and a daemon rightly takes the second
// for a retransmission of the first (RFC 3261 §17.2.3); no message's
// defect is in a branch longer than the magic cookie.
func Copy(m Message, transport string) []byte {
	start, end, ok := topVia(m.Raw)
	if !ok {
		return m.Raw
	}
	via := m.Raw[start:end]
	if c := bytes.IndexByte(via, ','); c >= 0 {
		via = via[:c]
	}
	loc := cookieBranch.FindSubmatchIndex(via)
	if loc == nil {
		return m.Raw
	}
	at := start + loc[5]
	suffix := "-" + strings.TrimSuffix(filepath.Base(m.Name), ".dat") + "-" + transport
	out := append([]byte(nil), m.Raw[:at]...)
	out = append(out, suffix...)
	return append(out, m.Raw[at:]...)
}

// topVia is the span of the first Via header (with its continuation
// lines).
func topVia(raw []byte) (int, int, bool) {
	lines := bytes.SplitAfter(raw, []byte("\n"))
	pos := 0
	for i, l := range lines {
		if i > 0 && len(bytes.TrimSpace(l)) == 0 {
			return 0, 0, false
		}
		name, _, ok := bytes.Cut(l, []byte(":"))
		if n := strings.ToLower(strings.TrimSpace(string(name))); i > 0 && ok && (n == "via" || n == "v") && l[0] != ' ' && l[0] != '\t' {
			end := pos + len(l)
			for _, next := range lines[i+1:] {
				if len(next) == 0 || (next[0] != ' ' && next[0] != '\t') {
					break
				}
				end += len(next)
			}
			return pos, end, true
		}
		pos += len(l)
	}
	return 0, 0, false
}

// sendUDP sends from where the answer will come: a daemon answers a
// datagram at the source IP and the top Via's port (RFC 3261 §18.2.2),
// the source port only with rport. So each message leaves from its own
// loopback IP (127.0.0.0/8 is all local) bound to its Via's port.
func sendUDP(target netip.AddrPort, raw []byte) (answer, error) {
	conn, err := listenAt(viaPort(raw))
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	if _, err := conn.WriteToUDPAddrPort(raw, target); err != nil {
		return answer{}, err
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	var last answer
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return last, nil
		}
		a, err := readHead(bufio.NewReader(bytes.NewReader(buf[:n])))
		if err != nil || !slices.Contains(callIDs(raw), a.callID) {
			continue
		}
		if a.code >= 200 {
			return a, nil
		}
		if a.code > 100 {
			last = a
		}
	}
}

// listenAt binds port on a loopback IP no other test is likely to use.
func listenAt(port int) (*net.UDPConn, error) {
	var err error
	for try := 0; try < 50; try++ {
		ip := net.IPv4(127, byte(100+rand.IntN(150)), byte(rand.IntN(256)), byte(1+rand.IntN(254)))
		var c *net.UDPConn
		if c, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port}); err == nil {
			return c, nil
		}
	}
	return nil, err
}

var viaSentBy = regexp.MustCompile(`(?is)SIP\s*/\s*[0-9.]+\s*/\s*[a-z]+\s+([^\s;,]+)([^,]*)`)

// viaPort is the port a datagram answer to raw goes to: the top Via's
// (5060 when it names none), or 0 (any) when it asks for rport.
func viaPort(raw []byte) int {
	start, end, ok := topVia(raw)
	if !ok {
		return 0
	}
	_, val, _ := bytes.Cut(raw[start:end], []byte(":"))
	m := viaSentBy.FindSubmatch(val)
	if m == nil {
		return 0
	}
	for _, p := range strings.Split(string(m[2]), ";") {
		if strings.EqualFold(strings.TrimSpace(p), "rport") {
			return 0
		}
	}
	if _, p, err := net.SplitHostPort(string(m[1])); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
	}
	return 5060
}

func sendTCP(target netip.AddrPort, raw []byte) (answer, error) {
	conn, err := net.DialTimeout("tcp", target.String(), 2*time.Second)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write(raw); err != nil {
		return answer{}, nil // refused and closed before we finished writing
	}
	return readFinal(bufio.NewReader(conn), callIDs(raw)), nil
}

// readFinal reads responses until a final one or the deadline, and
// returns its code, or that of the last provisional one other than 100.
func readFinal(r *bufio.Reader, callIDs []string) answer {
	var last answer
	for {
		a, err := readHead(r)
		if err != nil {
			return last
		}
		if _, err := io.CopyN(io.Discard, r, int64(a.clen)); err != nil {
			return last
		}
		if !slices.Contains(callIDs, a.callID) {
			continue
		}
		if a.code >= 200 {
			return a
		}
		if a.code > 100 {
			last = a
		}
	}
}

// answer is one response as the torture client read it.
type answer struct {
	code   int
	reason string
	clen   int
	callID string
}

func readHead(r *bufio.Reader) (a answer, err error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return answer{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if a.code == 0 {
				continue // keep-alive CRLF
			}
			return a, nil
		}
		if a.code == 0 {
			if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &a.code); err != nil || a.code == 0 {
				return answer{}, fmt.Errorf("not a SIP/2.0 response: %q", line)
			}
			if f := strings.SplitN(line, " ", 3); len(f) == 3 {
				a.reason = f[2]
			}
			continue
		}
		name, val, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length", "l":
			fmt.Sscanf(strings.TrimSpace(val), "%d", &a.clen)
		case "call-id", "i":
			if a.callID == "" {
				a.callID = strings.TrimSpace(val)
			}
		}
	}
}

// callIDs are the Call-IDs of a raw message's first header block: answers
// are matched on them (dblreq carries a second request, which a stream
// reads as one; multi01 carries two Call-IDs).
func callIDs(raw []byte) []string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var out []string
	for _, l := range strings.Split(string(head), "\n")[1:] {
		name, val, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if n := strings.ToLower(strings.TrimSpace(name)); ok && (n == "call-id" || n == "i") {
			out = append(out, strings.TrimSpace(val))
		}
	}
	if len(out) == 0 {
		out = append(out, "") // insuf: the answer has none either
	}
	return out
}

// Alive sends a well-formed OPTIONS over TCP and expects any final response.
func Alive(target netip.AddrPort) error {
	conn, err := net.DialTimeout("tcp", target.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	cid := fmt.Sprintf("alive-%d", time.Now().UnixNano())
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP %s;branch=%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:torture@%s>;tag=alive\r\nTo: <sip:%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		target, local, sip.GenerateBranch(), local.Addr(), target, cid)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	if a := readFinal(bufio.NewReader(conn), []string{cid}); a.code == 0 {
		return fmt.Errorf("no answer to OPTIONS from %s", target)
	}
	return nil
}

// Request is a fuzz input parsed as a SIP request, or nil when it is not
// one (unparsable, or a response): the daemons' fuzz targets feed the
// requests that parse to their own decision code.
func Request(data []byte) *sip.Request {
	m, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	req, _ := m.(*sip.Request)
	return req
}
