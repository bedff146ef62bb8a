package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

const testDomain = "siplab.test"

// memLocation is a real, tiny location service: a map of user to bindings.
type memLocation struct {
	mu    sync.Mutex
	users map[string][]location.Binding
}

func newMemLocation(users ...string) *memLocation {
	m := &memLocation{users: map[string][]location.Binding{}}
	for _, u := range users {
		m.users[u] = nil
	}
	return m
}

func (m *memLocation) Lookup(_ context.Context, aor string) ([]location.Binding, error) {
	user := strings.TrimPrefix(aor, "sip:")
	user, _, _ = strings.Cut(user, "@")
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.users[user]
	if !ok {
		return nil, fmt.Errorf("%w: %s", location.ErrUnknownUser, aor)
	}
	return append([]location.Binding(nil), b...), nil
}

// bind registers user at a phone: Contact as written and source as seen.
func (m *memLocation) bind(user, contact string, source netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[user] = append(m.users[user], location.Binding{
		AOR: "sip:" + user + "@" + testDomain, Contact: "<" + contact + ">", ContactURI: contact,
		Source: source, Transport: "udp", Expires: time.Now().Add(time.Hour), Updated: time.Now(),
	})
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy runs a proxy on 127.0.0.1:0.
func startProxy(t testing.TB, cfg Config) (*Proxy, netip.AddrPort) {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = testDomain
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	// Two readers on the socket, and the bound on runnable goroutines the
	// daemon runs with.
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Logger: cfg.Logger, Readers: 2, MaxRunnable: DefaultMaxRunnable})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, ep)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); p.Close() })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return p, p.LocalAddrs()[0]
}

type received struct {
	msg  sip.Message
	from netip.AddrPort
}

// phone is a raw UDP SIP endpoint: it sends exactly the bytes a test
// writes and reports every message it gets, so tests see the wire.
type phone struct {
	t    testing.TB
	conn *net.UDPConn
	tcp  net.Conn // set for a TCP phone: everything goes over it
	addr netip.AddrPort
	in   chan received
}

// newTCPPhone is a phone with one TCP connection to the proxy, as a
// softphone on TCP keeps it.
func newTCPPhone(t testing.TB, ip string, proxy netip.AddrPort) *phone {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0))}
	c, err := d.Dial("tcp", proxy.String())
	if err != nil {
		t.Fatal(err)
	}
	ph := &phone{t: t, tcp: c, addr: c.LocalAddr().(*net.TCPAddr).AddrPort(), in: make(chan received, 64)}
	t.Cleanup(func() { c.Close() })
	go func() {
		defer close(ph.in)
		stream := sip.NewParser().NewSIPStream()
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			stream.ParseSIPStream(buf[:n], func(m sip.Message) {
				m.SetSource(proxy.String())
				select {
				case ph.in <- received{m, proxy}:
				default:
				}
			})
		}
	}()
	return ph
}

func newPhone(t testing.TB, ip string) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	ph := &phone{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), in: make(chan received, 64)}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(ph.in)
				return
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			m.SetSource(from.String())
			select {
			case ph.in <- received{m, from}:
			default: // a test that stopped reading does not block the socket
			}
		}
	}()
	return ph
}

func (ph *phone) send(to netip.AddrPort, m any) {
	ph.t.Helper()
	var b []byte
	switch v := m.(type) {
	case string:
		b = []byte(v)
	case fmt.Stringer: // sip.Message, msg
		b = []byte(v.String())
	default:
		ph.t.Fatalf("cannot send %T", m)
	}
	if ph.tcp != nil {
		if _, err := ph.tcp.Write(b); err != nil {
			ph.t.Fatal(err)
		}
		return
	}
	if _, err := ph.conn.WriteToUDPAddrPort(b, to); err != nil {
		ph.t.Fatal(err)
	}
}

// on returns the phone reporting failures to t (a subtest).
func (ph *phone) on(t testing.TB) *phone {
	c := *ph
	c.t = t
	return &c
}

const waitFor = 5 * time.Second

// next waits for the first message match accepts, dropping others
// (retransmissions, 100 Trying...).
func (ph *phone) next(match func(sip.Message) bool, what string) received {
	ph.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case r, ok := <-ph.in:
			if !ok {
				ph.t.Fatalf("phone %s closed while waiting for %s", ph.addr, what)
			}
			if match(r.msg) {
				return r
			}
		case <-deadline:
			ph.t.Fatalf("phone %s: no %s within %s", ph.addr, what, waitFor)
		}
	}
}

func (ph *phone) request(method sip.RequestMethod) (*sip.Request, netip.AddrPort) {
	ph.t.Helper()
	r := ph.next(func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == method
	}, string(method))
	return r.msg.(*sip.Request), r.from
}

func (ph *phone) response(code int, method sip.RequestMethod) *sip.Response {
	ph.t.Helper()
	r := ph.next(func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode == code && res.CSeq() != nil && res.CSeq().MethodName == method
	}, fmt.Sprintf("%d for %s", code, method))
	return r.msg.(*sip.Response)
}

// final waits for the final response to method and returns it, whatever
// its code.
func (ph *phone) final(method sip.RequestMethod) *sip.Response {
	ph.t.Helper()
	r := ph.next(func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode >= 200 && res.CSeq() != nil && res.CSeq().MethodName == method
	}, "final response to "+string(method))
	return r.msg.(*sip.Response)
}

// silent asserts nothing matching arrives for d: the way to show a packet
// went elsewhere.
func (ph *phone) silent(d time.Duration, match func(sip.Message) bool, what string) {
	ph.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case r, ok := <-ph.in:
			if !ok {
				return
			}
			if match(r.msg) {
				ph.t.Fatalf("phone %s got %s: %s", ph.addr, what, firstLine(r.msg))
			}
		case <-deadline:
			return
		}
	}
}

func anyResponse(m sip.Message) bool { _, ok := m.(*sip.Response); return ok }

func isRequest(method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && r.Method == method
	}
}

// answer sends a response to req back to where it came from, as a UAS
// would (with a fixed To tag so 180 and 200 share the dialog).
func (ph *phone) answer(req *sip.Request, from netip.AddrPort, code int, reason, tag string) *sip.Response {
	ph.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 && tag != "" {
		res.To().Params.Add("tag", tag)
	}
	if code >= 180 && code < 300 {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: ph.addr.Addr().String(), Port: int(ph.addr.Port())}})
	}
	ph.send(from, res)
	return res
}

// msg is a request written by hand, so tests control every header.
type msg struct {
	method  string
	ruri    string
	sentBy  string // Via sent-by; default the phone's address
	tcp     bool
	rport   bool
	branch  string
	from    string // user@domain
	fromTag string
	to      string
	toTag   string
	callID  string
	cseq    int
	maxFwd  int // 0 means 70; -1 means write 0
	routes  []string
	extra   []string
	contact string
}

func (m msg) String() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("%s %s SIP/2.0", m.method, m.ruri)
	rport := ""
	if m.rport {
		rport = ";rport"
	}
	transport := "UDP"
	if m.tcp {
		transport = "TCP"
	}
	w("Via: SIP/2.0/%s %s;branch=%s%s", transport, m.sentBy, m.branch, rport)
	mf := m.maxFwd
	switch mf {
	case 0:
		mf = 70
	case -1:
		mf = 0
	}
	w("Max-Forwards: %d", mf)
	for _, r := range m.routes {
		w("Route: %s", r)
	}
	w("From: <sip:%s>;tag=%s", m.from, m.fromTag)
	if m.toTag != "" {
		w("To: <sip:%s>;tag=%s", m.to, m.toTag)
	} else {
		w("To: <sip:%s>", m.to)
	}
	w("Call-ID: %s", m.callID)
	w("CSeq: %d %s", m.cseq, m.method)
	if m.contact != "" {
		w("Contact: <%s>", m.contact)
	}
	for _, e := range m.extra {
		w("%s", e)
	}
	w("Content-Length: 0")
	w("")
	return b.String()
}

// newMsg is an out-of-dialog request from this phone.
func (ph *phone) newMsg(method, ruri, from, to string) msg {
	return msg{
		method: method, ruri: ruri, sentBy: ph.addr.String(), rport: true,
		branch: sip.GenerateBranchN(12), from: from, fromTag: sip.GenerateTagN(8),
		to: to, callID: sip.GenerateTagN(16) + "@test", cseq: 1,
		contact: "sip:" + strings.Split(from, "@")[0] + "@" + ph.addr.String(),
		tcp:     ph.tcp != nil,
	}
}

// inDialog derives the next request of the caller's dialog from the 2xx:
// Request-URI = remote Contact, Route = reversed Record-Route.
func inDialog(first msg, ok *sip.Response, method string, cseq int) msg {
	m := first
	m.method = method
	m.cseq = cseq
	m.branch = sip.GenerateBranchN(12)
	m.toTag, _ = ok.To().Params.Get("tag")
	m.ruri = ok.Contact().Address.String()
	m.routes = nil
	rr := ok.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		m.routes = append(m.routes, "<"+rr[i].(*sip.RecordRouteHeader).Address.String()+">")
	}
	m.contact = ""
	return m
}

// ackFor is the ACK for a 2xx (a new transaction, routed end to end).
func ackFor(first msg, ok *sip.Response) msg {
	m := inDialog(first, ok, "ACK", first.cseq)
	return m
}

// routeDest is where the caller sends an in-dialog request: the first
// Route, else the Request-URI.
func routeDest(t testing.TB, m msg) netip.AddrPort {
	t.Helper()
	target := m.ruri
	if len(m.routes) > 0 {
		target = strings.Trim(m.routes[0], "<>")
	}
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(u.Host), uint16(u.Port))
}

func mustCode(t testing.TB, res *sip.Response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, want)
	}
}

func firstLine(m sip.Message) string {
	line, _, _ := strings.Cut(m.String(), "\r\n")
	return line
}
