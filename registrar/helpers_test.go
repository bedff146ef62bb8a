package registrar

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
)

const domain = "siplab.test"

const usersFile = `# test users
alice secret
bob   hunter2
carol blocked-pw blocked
`

// newClock is the time source for the registrar under test.
func newClock() *siptest.Clock {
	return siptest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REGISTRAR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(&tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlogWriter struct{ t testing.TB }

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testUsers(t testing.TB) *sipauth.Users {
	t.Helper()
	u, err := sipauth.ParseUsers(strings.NewReader(usersFile))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func baseConfig(t testing.TB, clk *siptest.Clock) Config {
	return Config{
		Domain: domain,
		Users:  testUsers(t),
		Now:    clk.Now,
		Logger: testLogger(t),
	}
}

func newRegistrar(t testing.TB, cfg Config) *Registrar {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// serveRegistrar runs r on real loopback sockets.
func serveRegistrar(t testing.TB, r *Registrar) netip.AddrPort {
	t.Helper()
	return startEndpoint(t, "127.0.0.1", r.Attach).Addr()
}

// startEndpoint listens on ip:0 and starts serving, after attach (nil: no
// handlers) has installed what answers; the endpoint stops with the test.
func startEndpoint(t testing.TB, ip string, attach func(*sipnet.Endpoint)) *sipnet.Endpoint {
	t.Helper()
	ep := siptest.Listen(t, ip, nil, testLogger(t))
	if attach != nil {
		attach(ep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ep
}

// phone is a UA on its own loopback socket that registers the way a
// softphone does.
type phone struct {
	t         testing.TB
	ep        *sipnet.Endpoint
	client    *sipgo.Client
	registrar netip.AddrPort
	transport string
	user      string
	pass      string
	callID    string
	cseq      uint32
}

func newPhone(t testing.TB, registrar netip.AddrPort, user, pass string) *phone {
	t.Helper()
	return newPhoneAt(t, "127.0.0.1", registrar, user, pass)
}

// newPhoneAt is a phone on another loopback address: another source.
func newPhoneAt(t testing.TB, ip string, registrar netip.AddrPort, user, pass string) *phone {
	t.Helper()
	ep := startEndpoint(t, ip, nil)
	c, err := ep.Client("udp")
	if err != nil {
		t.Fatal(err)
	}
	return &phone{t: t, ep: ep, client: c, registrar: registrar, transport: "udp", user: user, pass: pass,
		callID: user + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@test", cseq: 100}
}

func (p *phone) addr() netip.AddrPort { return p.ep.Addr() }

// request builds the next REGISTER of this phone's registration: same
// Call-ID, next CSeq. Extra headers are "Name: value" lines.
func (p *phone) request(extra ...string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	aor := sip.Uri{Scheme: "sip", User: p.user, Host: domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", "ph"+p.user)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	cid := sip.CallIDHeader(p.callID)
	req.AppendHeader(&cid)
	p.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq, MethodName: sip.REGISTER})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, h := range extra {
		name, val, _ := strings.Cut(h, ":")
		req.AppendHeader(sip.NewHeader(strings.TrimSpace(name), strings.TrimSpace(val)))
	}
	req.SetTransport(strings.ToUpper(p.transport))
	req.SetDestination(p.registrar.String())
	return req
}

// send runs one transaction.
func (p *phone) send(req *sip.Request) *sip.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("REGISTER: %v", err)
	}
	return res
}

// answer computes an Authorization for a 401 with icholy/digest.
func answer(t testing.TB, res *sip.Response, user, pass string, nc int) string {
	t.Helper()
	return answerCount(t, res, user, pass, "sip:"+domain, nc)
}

func answerURI(t testing.TB, res *sip.Response, user, pass, uri string) string {
	t.Helper()
	return answerCount(t, res, user, pass, uri, 1)
}

func answerCount(t testing.TB, res *sip.Response, user, pass, uri string, nc int) string {
	t.Helper()
	h := res.GetHeader("WWW-Authenticate")
	if h == nil {
		t.Fatalf("%d without WWW-Authenticate", res.StatusCode)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri, Username: user, Password: pass, Count: nc})
	if err != nil {
		t.Fatal(err)
	}
	return "Authorization: " + cred.String()
}

// register does the 401 dance and returns the final response and the
// Authorization line that was accepted (or refused).
func (p *phone) register(extra ...string) (*sip.Response, string) {
	p.t.Helper()
	res := p.send(p.request(extra...))
	if res.StatusCode != sip.StatusUnauthorized {
		return res, ""
	}
	auth := answer(p.t, res, p.user, p.pass, 1)
	return p.send(p.request(append(extra, auth)...)), auth
}

// contacts returns the Contact URIs and expires of a 200 OK.
func contacts(res *sip.Response) map[string]int {
	out := map[string]int{}
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		e, _ := strconv.Atoi(c.Params.GetOr("expires", "-1"))
		out[c.Address.String()] = e
	}
	return out
}

// parseRequest parses raw SIP text the way the transport layer does and
// stamps the source it "came from".
func parseRequest(t testing.TB, raw string, source string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	req := m.(*sip.Request)
	req.SetSource(source)
	req.SetTransport("UDP")
	return req
}

// mustSet changes a live setting as `registrar set` does.
func mustSet(t testing.TB, r *Registrar, key, value string) {
	t.Helper()
	if _, err := r.Set(key, value); err != nil {
		t.Fatal(err)
	}
}

// received is what the transport layer hands the registrar for a datagram
// from source: nil when sipgo's parser drops it or it is not a request.
func received(data []byte, source string) *sip.Request {
	m, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return nil
	}
	req.SetSource(source)
	req.SetTransport("UDP")
	return req
}

// rawPhone sends REGISTERs as text from a plain UDP socket, so a test
// can send the very same bytes twice (a retransmission) and compare the
// bytes of the answers.
type rawPhone struct {
	t          testing.TB
	conn       *net.UDPConn
	registrar  *net.UDPAddr
	user, pass string
	callID     string
}

func newRawPhone(t testing.TB, registrar netip.AddrPort, user, pass string) *rawPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPhone{t: t, conn: conn, registrar: net.UDPAddrFromAddrPort(registrar), user: user, pass: pass,
		callID: "raw-" + user + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// message is the REGISTER with this CSeq (its branch derived from it),
// with an Authorization line or none.
func (p *rawPhone) message(cseq int, auth string) []byte {
	local := p.conn.LocalAddr().String()
	if auth != "" {
		auth += "\r\n"
	}
	return []byte("REGISTER sip:" + domain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + p.callID + "-" + strconv.Itoa(cseq) + ";rport\r\n" +
		"From: <sip:" + p.user + "@" + domain + ">;tag=raw\r\n" +
		"To: <sip:" + p.user + "@" + domain + ">\r\n" +
		"Call-ID: " + p.callID + "\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n" +
		"Max-Forwards: 70\r\n" +
		"Contact: <sip:" + p.user + "@" + local + ">\r\n" +
		auth +
		"Content-Length: 0\r\n\r\n")
}

// exchangeRaw sends msg once and returns the first datagram that answers.
func (p *rawPhone) exchangeRaw(msg []byte) []byte {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP(msg, p.registrar); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := p.conn.Read(buf)
	if err != nil {
		p.t.Fatalf("no answer: %v", err)
	}
	return buf[:n]
}

func (p *rawPhone) exchange(msg []byte) *sip.Response {
	p.t.Helper()
	m, err := sip.ParseMessage(p.exchangeRaw(msg))
	if err != nil {
		p.t.Fatal(err)
	}
	res, ok := m.(*sip.Response)
	if !ok {
		p.t.Fatalf("not a response: %v", m)
	}
	return res
}
