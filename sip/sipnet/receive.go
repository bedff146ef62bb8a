package sipnet

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siplab/siplab/sip/sipcheck"
)

// The receive path every daemon shares: each UDP datagram and each message
// framed from a TCP or TLS stream passes sipcheck.Receiver before sipgo
// parses it, so a request sipgo would drop unanswered gets its 400 (or
// 416, 505) here, and only what cannot be addressed is dropped, with a log
// line. The sockets are wrapped underneath sipgo; sipgo itself is as
// released.

// maxStreamMessage bounds one message on a stream (sipgo's own limit).
const maxStreamMessage = 65535

// receiveLog logs one refusal or drop.
func receiveLog(log *slog.Logger, transport string, src netip.AddrPort, v sipcheck.Verdict) {
	if v.Response != nil {
		log.Info("refused on the receive path", "transport", transport, "source", src,
			"code", v.Code, "reason", v.Reason, "detail", v.Detail, "call_id", v.CallID)
		return
	}
	log.Info("dropped a message nobody can be answered for", "transport", transport, "source", src,
		"detail", v.Detail, "call_id", v.CallID)
}

// checkedPacketConn is the UDP socket as sipgo reads it.
type checkedPacketConn struct {
	net.PacketConn
	rc   *sipcheck.Receiver
	log  *slog.Logger
	gate *gate // nil: no overload gate
	// backlog, when not nil, holds the reader while the daemon has more
	// runnable goroutines than its bound (Config.MaxRunnable).
	backlog *backlogReader
	// absorbed says whether an ACK ends here, unparsed (Endpoint.AbsorbACKs).
	absorbed func(data []byte) bool
	direct   *direct // nil: no direct path (direct.go)
	oob      [128]byte
}

// read reads one datagram and, with the gate on, how long it waited in
// the socket's queue (0 when unknown). Each reader goroutine has its own
// checkedPacketConn (Config.Readers), so oob needs no lock.
func (c *checkedPacketConn) read(b []byte) (int, net.Addr, time.Duration, error) {
	uc, ok := c.PacketConn.(*net.UDPConn)
	if c.gate == nil || !ok {
		n, addr, err := c.PacketConn.ReadFrom(b)
		return n, addr, 0, err
	}
	n, oobn, _, ap, err := uc.ReadMsgUDPAddrPort(b, c.oob[:])
	if err != nil {
		return n, nil, 0, err
	}
	var waited time.Duration
	if at, ok := rxTime(c.oob[:oobn]); ok {
		waited = time.Since(at)
	}
	return n, net.UDPAddrFromAddrPort(ap), waited, nil
}

func (c *checkedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if c.backlog != nil {
			c.backlog.wait()
		}
		n, addr, waited, err := c.read(b)
		if err != nil || n == 0 || len(bytes.Trim(b[:n], "\r\n\x00")) == 0 {
			return n, addr, err // keep-alives and errors are sipgo's
		}
		if c.absorbed != nil && c.absorbed(b[:n]) {
			continue
		}
		src := addrPort(addr)
		var branch string
		if c.gate != nil {
			branch = inviteBranch(b[:n])
			if c.gate.wasRefused(branch) {
				c.gate.dropped.Add(1)
				continue
			}
			if c.gate.refuse(waited, b[:n], branch, time.Now()) {
				if v, ok := c.rc.Shed(b[:n], src, c.gate.retryAfter()); ok {
					if _, err := c.PacketConn.WriteTo(v.Response, net.UDPAddrFromAddrPort(v.To)); err != nil {
						c.log.Warn("503 not sent", "source", src, "err", err)
					}
					c.gate.refusedBranch(branch)
					c.gate.shed(waited)
					continue
				}
			}
		}
		if branch != "" {
			c.gate.admit(branch)
		}
		if c.direct != nil && c.direct.take(b[:n], src) {
			continue
		}
		v := c.rc.Check(b[:n], src)
		if v.Response != nil {
			if _, err := c.PacketConn.WriteTo(v.Response, net.UDPAddrFromAddrPort(v.To)); err != nil {
				c.log.Warn("refusal not sent", "source", src, "err", err)
			}
		}
		if v.Pass == nil {
			receiveLog(c.log, UDP, src, v)
			continue
		}
		if &v.Pass[0] != &b[0] {
			n = copy(b, v.Pass)
		}
		return n, addr, nil
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// checkedListener hands sipgo connections whose reads come framed and
// checked.
type checkedListener struct {
	net.Listener
	rc        *sipcheck.Receiver
	log       *slog.Logger
	transport string
}

func (l *checkedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return conn, err
	}
	return &checkedConn{Conn: conn, rc: l.rc, log: l.log, transport: l.transport,
		src: addrPort(conn.RemoteAddr()), buf: make([]byte, 32<<10)}, nil
}

// checkedConn frames the stream by Content-Length (RFC 3261 §18.3) and
// gives sipgo one checked piece per Read: a message, part of one, or the
// CRLFs of a keep-alive.
type checkedConn struct {
	net.Conn
	rc        *sipcheck.Receiver
	log       *slog.Logger
	transport string
	src       netip.AddrPort

	buf      []byte
	in       []byte   // read, not yet framed
	out      [][]byte // framed and checked, for sipgo
	err      error    // the read error to return once out is empty
	draining bool     // framing lost: nothing more is read as SIP
}

func (c *checkedConn) Read(b []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.draining {
			return 0, c.drain()
		}
		n, err := c.Conn.Read(c.buf)
		c.in = append(c.in, c.buf[:n]...)
		c.frame()
		if err != nil && !c.draining {
			c.err = err
			if len(c.out) == 0 && len(c.in) > 0 {
				// Pending bytes that never framed: sipgo sees them as they are.
				c.out = append(c.out, c.in)
				c.in = nil
			}
		}
	}
	n := copy(b, c.out[0])
	if n == len(c.out[0]) {
		c.out = c.out[1:]
	} else {
		c.out[0] = c.out[0][n:]
	}
	return n, nil
}

// drainFor bounds how long a stream that lost its framing stays open for
// the answers to the messages before the break (Timer F's 64*T1).
const drainFor = 32 * time.Second

// drain discards what the peer still sends until it closes or drainFor
// passes, and then reports EOF, on which sipgo closes the connection.
func (c *checkedConn) drain() error {
	c.Conn.SetReadDeadline(time.Now().Add(drainFor))
	for {
		if _, err := c.Conn.Read(c.buf); err != nil {
			c.err = io.EOF
			return io.EOF
		}
	}
}

// frame moves every complete message from in to out.
func (c *checkedConn) frame() {
	for len(c.in) > 0 && !c.draining {
		if k := len(c.in) - len(bytes.TrimLeft(c.in, "\r\n")); k > 0 {
			c.out = append(c.out, c.in[:k])
			c.in = c.in[k:]
			continue
		}
		f := c.rc.Frame(c.in, c.src)
		if f.Refusal != nil {
			c.refuse(*f.Refusal)
			return
		}
		if f.Length == 0 {
			if len(c.in) > maxStreamMessage {
				c.refuse(sipcheck.Verdict{Detail: "headers longer than 64 KB"})
			}
			return
		}
		if f.Length > maxStreamMessage {
			c.refuse(sipcheck.Verdict{Detail: "message longer than 64 KB"})
			return
		}
		if len(c.in) < f.Length {
			return
		}
		msg := c.in[:f.Length:f.Length]
		c.in = c.in[f.Length:]
		v := c.rc.Check(msg, c.src)
		if v.Response != nil {
			c.write(v.Response)
		}
		if v.Pass == nil {
			receiveLog(c.log, c.transport, c.src, v)
			continue
		}
		c.out = append(c.out, v.Pass)
	}
}

// refuse answers what the stream cannot frame, if it can: without a
// length there is no next message to find, so nothing more is read from
// the connection, but it stays open for the answers still to be sent.
func (c *checkedConn) refuse(v sipcheck.Verdict) {
	if v.Response != nil {
		c.write(v.Response)
	}
	receiveLog(c.log, c.transport, c.src, v)
	c.in = nil
	c.draining = true
}

func (c *checkedConn) write(res []byte) {
	if _, err := c.Conn.Write(res); err != nil {
		c.log.Warn("refusal not sent", "transport", c.transport, "source", c.src, "err", err)
	}
}

// gate is the overload gate of a UDP socket (Config.MaxQueueDelay). The
// kernel stamps every datagram on arrival; when datagrams keep waiting
// longer than maxDelay the daemon is behind, and a new request then costs
// more than it can bring: sipp and phones retransmit an unanswered INVITE
// after 500 ms (T1), the callee its 2xx until the ACK, and every
// retransmission is more work for a server already late. New requests
// are then refused with 503 unparsed, so what was admitted — responses,
// ACKs, BYEs, the retransmissions of admitted INVITEs — gets the CPU.
//
// As in CoDel (RFC 8289) the delay must stay above maxDelay for
// gateInterval before anything is refused: a scheduling hiccup of a busy
// host, which the queue drains within that time, refuses nothing. Then a
// request answering a challenge (with credentials) still passes: it
// completes a call whose first INVITE was served already. Past 3 ×
// maxDelay, when admitted calls start to fail anyway, every new request
// is refused at once.
type gate struct {
	maxDelay time.Duration
	log      *slog.Logger
	refused  atomic.Uint64
	dropped  atomic.Uint64 // retransmissions of refused INVITEs dropped
	lastLog  atomic.Int64  // unix seconds of the last log line
	// mu guards what follows: the socket's readers share the gate.
	mu sync.Mutex
	// aboveSince is when the queue delay rose above maxDelay and stayed
	// there (zero: it is below).
	aboveSince time.Time

	// The branches of the INVITEs let through recently: a retransmission
	// of one is part of a call already admitted — its transaction absorbs
	// it — and must not draw a 503 that would end that call. Two
	// generations of at most gateMemory each, the older dropped every
	// gateGeneration: memory stays bounded whatever the rate.
	admittedSet branchSet
	// The branches of the INVITEs refused recently: sipp and phones
	// retransmit an INVITE every T1 until an answer arrives, so while the
	// queue is long the copies of a refused INVITE are still in it when
	// its 503 leaves. They end in the read loop unanswered (the 503 is on
	// its way): answering each copy again doubled the gate's work in the
	// overload bench (more refusals than calls offered).
	refusedSet branchSet
}

// branchSet remembers branches in two generations of at most gateMemory
// each, the older dropped every gateGeneration: memory stays bounded
// whatever the rate. Its owner locks.
type branchSet struct {
	cur, prev map[string]struct{}
	rotated   time.Time
}

func (s *branchSet) add(branch string) {
	if s.cur == nil || len(s.cur) >= gateMemory || time.Since(s.rotated) > gateGeneration {
		s.prev, s.cur, s.rotated = s.cur, make(map[string]struct{}), time.Now()
	}
	s.cur[branch] = struct{}{}
}

func (s *branchSet) has(branch string) bool {
	if branch == "" {
		return false
	}
	_, a := s.cur[branch]
	_, b := s.prev[branch]
	return a || b
}

const (
	gateMemory     = 1 << 16
	gateGeneration = 8 * time.Second
	// gateInterval is how long the queue delay must stay above maxDelay
	// before new requests are refused (CoDel's interval).
	gateInterval = 200 * time.Millisecond
)

// refuse decides whether a datagram that waited this long is to be
// refused, at now. Shed (the caller's next step) spares what is not new:
// responses, ACK, CANCEL, in-dialog requests.
func (g *gate) refuse(waited time.Duration, data []byte, branch string, now time.Time) bool {
	g.mu.Lock()
	if waited <= g.maxDelay {
		g.aboveSince = time.Time{}
		g.mu.Unlock()
		return false
	}
	if g.aboveSince.IsZero() {
		g.aboveSince = now
	}
	admitted, since := g.admittedLocked(branch), now.Sub(g.aboveSince)
	g.mu.Unlock()
	switch {
	case admitted:
		return false
	case waited > 3*g.maxDelay:
		return true // far behind: even a short burst gets no more work in
	}
	return since >= gateInterval && !sipcheck.HasCredentials(data)
}

// admit remembers an INVITE's branch.
func (g *gate) admit(branch string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.admittedSet.add(branch)
}

func (g *gate) admitted(branch string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.admittedLocked(branch)
}

func (g *gate) admittedLocked(branch string) bool { return g.admittedSet.has(branch) }

// refusedBranch remembers the branch of an INVITE answered 503.
func (g *gate) refusedBranch(branch string) {
	if branch == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusedSet.add(branch)
}

// wasRefused says whether an INVITE with this branch was answered 503:
// this one is a retransmission, to be dropped.
func (g *gate) wasRefused(branch string) bool {
	if branch == "" {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refusedSet.has(branch)
}

// inviteBranch is the top Via branch of an INVITE, read from the raw
// bytes ("" for anything else or when there is none).
func inviteBranch(data []byte) string {
	if !bytes.HasPrefix(data, []byte("INVITE ")) {
		return ""
	}
	i := bytes.Index(data, []byte("branch="))
	if i < 0 {
		return ""
	}
	rest := data[i+len("branch="):]
	end := bytes.IndexAny(rest, ";, \t\r\n")
	if end < 0 || end > 128 {
		return ""
	}
	return string(rest[:end])
}

// retryAfter is the Retry-After of the 503: a few seconds, enough for a
// burst to drain without telling phones to go away for long.
func (g *gate) retryAfter() int { return 2 }

// shed counts one refusal and logs at most one line per 10 s.
func (g *gate) shed(waited time.Duration) {
	n := g.refused.Add(1)
	now := time.Now().Unix()
	if last := g.lastLog.Load(); now-last >= 10 && g.lastLog.CompareAndSwap(last, now) {
		g.log.Warn("overloaded: refusing new requests with 503", "queue_delay", waited.Round(time.Millisecond),
			"max_queue_delay", g.maxDelay, "refused_so_far", n)
	}
}

// BacklogPauses is how often a UDP reader stopped reading because more
// goroutines were runnable than Config.MaxRunnable.
func (e *Endpoint) BacklogPauses() uint64 {
	if e.backlog == nil {
		return 0
	}
	return e.backlog.paused.Load()
}

// Shed is how many requests the overload gate refused so far.
func (e *Endpoint) Shed() uint64 {
	if e.gate == nil {
		return 0
	}
	return e.gate.refused.Load()
}
