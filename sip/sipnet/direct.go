package sipnet

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The direct path: requests of a method a daemon names (Endpoint.Direct)
// that arrive over UDP skip sipgo's transaction layer. The socket's read
// goroutine only looks at the method and hands the datagram to a worker,
// which runs the receive check (parsing the request once: the check's
// parse is the one the handler gets), the handler, and writes the
// response on the listening socket — or holds it until the handler
// releases it (DirectReply.Hold).
//
// It exists for the registrar. sipgo builds a server transaction per
// request — a state machine, timers, a goroutine, a table entry — and
// keeps each answered non-INVITE transaction for Timer J (32 s) with
// request and response inside, ~4-8 kB, only to absorb retransmissions.
// At thousands of REGISTERs a second that is most of the CPU, and it
// makes the memory held grow with the rate (what -max-transactions caps,
// refusing with 503 beyond it). A REGISTER's transaction needs far less:
//
//   - while it is served (a 200 waits for its binding to be fsync'd), a
//     retransmission of it is absorbed, as in sipgo's Trying state;
//   - after the answer, a retransmission gets the same bytes again if the
//     handler's Keep says so (a REGISTER's 2xx: served twice it would be
//     refused as out of order), for Timer J, in a table bounded by
//     directKept entries; other answers are not kept: they are computed
//     from the request alone, so a retransmission is simply served again,
//     what a stateless server does (the registrar's 401s, 403s, 400s).
//
// Transactions are told apart as RFC 3261 §17.2.3 says (the top Via's
// branch and sent-by, and the method: sip.ServerTxKeyMake); a request
// without an RFC 3261 branch got one from the receive check.

// DirectHandler serves the requests of one method on the direct path.
type DirectHandler struct {
	// Serve answers a request. It runs on one of the direct path's few
	// workers and must not block: an answer that has to wait (the
	// registrar's 200, until its binding is fsync'd) is held (DirectReply).
	Serve func(req *sip.Request) DirectReply
	// Keep reports whether a response is sent again, unchanged, to
	// retransmissions of its request for Timer J; nil keeps none.
	Keep func(res *sip.Response) bool
}

// DirectReply is a handler's answer to one request.
type DirectReply struct {
	// Response is the answer; nil sends nothing.
	Response *sip.Response
	// Hold, when set, holds Response back. The direct path serialises
	// Response first, on the worker, then calls Hold once with send, and
	// the worker moves on. Hold arranges for send to be called exactly
	// once, from any goroutine, when the answer may leave: send(nil)
	// sends Response as serialised, send(other) sends other instead (what
	// Response announced did not happen). Until then the request counts
	// as served: its retransmissions are absorbed.
	Hold func(send func(instead *sip.Response))
}

const (
	// directKept bounds the answered transactions the direct path
	// remembers: ~0.5 kB each (key and response bytes), so at most ~35
	// MB. At up to directKept / Timer J (2,000) answers a second each is
	// kept for Timer J; beyond, for directKept / rate seconds (4.5 s at
	// 15,000/s), still longer than the 0.5-4 s a phone waits before it
	// retransmits a request whose answer was lost.
	directKept   = 1 << 16
	directShards = 16
	// directBuf is the pooled copy of a datagram; larger ones get their
	// own.
	directBuf = 2048
	// directServing bounds the requests served at once, held answers
	// included. Past it the read goroutine waits for a place, so a
	// backlog stays in the socket's receive queue, where the kernel drops
	// what does not fit, instead of growing in memory (and being worked
	// on after its senders have retransmitted). 1024 is far more than a
	// group commit holds (tens at 10,000 a second).
	directServing = 1024
	// directIdle is how long an idle worker or the sender waits for work
	// before it ends (a new one starts with the next request).
	directIdle = 10 * time.Second
	// directBatch bounds the datagrams of one sendmmsg.
	directBatch = 64
)

var directSeed = maphash.MakeSeed()

// direct is the direct path of one UDP socket.
//
// Requests are served by a few long-lived workers rather than a goroutine
// each: at thousands a second, growing each new goroutine's stack through
// the parser and the registrar was ~7 % of the registrar's CPU. Workers
// never wait for a disk (held answers, DirectReply.Hold), so a few are
// enough: up to 2 × GOMAXPROCS (at least 4), started as the load needs
// them, ended when idle. Answers computed at once leave from the worker; held answers,
// released together after their group commit's fsync, are queued for one
// sender goroutine, which sends what has queued up with one sendmmsg
// (IPv4 sockets; others one datagram at a time).
type direct struct {
	handlers map[string]DirectHandler // by method
	conn     net.PacketConn
	e        *Endpoint
	bufs     sync.Pool
	places   chan struct{} // directServing of them
	work     chan directWork
	ended    chan struct{} // a worker ended
	workers  atomic.Int32
	maxWork  int32
	out      directSender
	shards   [directShards]directShard
	inflight atomic.Int64
	kept     atomic.Int64
	replayed atomic.Uint64
	absorbed atomic.Uint64
}

// directWork is one datagram to serve; bp is its pooled buffer, if any.
type directWork struct {
	h    DirectHandler
	data []byte
	bp   *[]byte
	src  netip.AddrPort
}

// directShard is one part of the transaction memory: the transactions
// being served, and two generations of answers kept (the older dropped
// when the newer is Timer J old or full).
type directShard struct {
	mu       sync.Mutex
	serving  map[string]struct{}
	cur      map[string][]byte
	prev     map[string][]byte
	curStart time.Time
	_        [24]byte
}

func newDirect(e *Endpoint, conn net.PacketConn) *direct {
	d := &direct{handlers: map[string]DirectHandler{}, conn: conn, e: e, places: make(chan struct{}, directServing),
		work: make(chan directWork), ended: make(chan struct{}, 1), maxWork: int32(max(4, 2*runtime.GOMAXPROCS(0)))}
	d.bufs.New = func() any { b := make([]byte, directBuf); return &b }
	for i := range d.shards {
		d.shards[i].serving = map[string]struct{}{}
		d.shards[i].cur = map[string][]byte{}
	}
	d.out.init(conn, e.log)
	return d
}

// Direct serves requests of method that arrive over UDP with h, outside
// sipgo's transaction layer (see direct.go). Call it before Start. Other
// methods, and every request over TCP or TLS, still go to the Server's
// handlers.
func (e *Endpoint) Direct(method sip.RequestMethod, h DirectHandler) error {
	if e.udp == nil {
		return fmt.Errorf("%w: udp (direct path for %s)", ErrTransportDisabled, method)
	}
	if h.Serve == nil {
		return fmt.Errorf("sipnet: direct path for %s without a handler", method)
	}
	if e.direct == nil {
		e.direct = newDirect(e, e.udp)
	}
	e.direct.handlers[string(method)] = h
	return nil
}

// DirectStats counts the direct path's work.
type DirectStats struct {
	// Serving are the requests being served now (held answers
	// included), Kept the answers remembered for retransmissions.
	Serving int `json:"serving"`
	Kept    int `json:"kept"`
	// Replayed are retransmissions answered from memory, Absorbed those
	// that arrived while their request was being served.
	Replayed uint64 `json:"replayed"`
	Absorbed uint64 `json:"absorbed"`
}

// DirectStats reports the direct path's counts (zero without one).
func (e *Endpoint) DirectStats() DirectStats {
	d := e.direct
	if d == nil {
		return DirectStats{}
	}
	return DirectStats{Serving: int(d.inflight.Load()), Kept: int(d.kept.Load()),
		Replayed: d.replayed.Load(), Absorbed: d.absorbed.Load()}
}

// take reports whether a datagram is a request the direct path serves,
// and if so hands a copy of it to a worker. It runs on the socket's read
// goroutine, so it only looks at the method.
func (d *direct) take(data []byte, src netip.AddrPort) bool {
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 || sp > 16 {
		return false
	}
	h, ok := d.handlers[string(data[:sp])] // no allocation: map lookup by converted key
	if !ok {
		return false
	}
	w := directWork{h: h, src: src}
	if len(data) <= directBuf {
		w.bp = d.bufs.Get().(*[]byte)
		w.data = (*w.bp)[:len(data)]
	} else {
		w.data = make([]byte, len(data))
	}
	copy(w.data, data)
	d.places <- struct{}{}
	d.inflight.Add(1)
	select {
	case d.work <- w: // an idle worker took it
		return true
	default:
	}
	for {
		if n := d.workers.Add(1); n <= d.maxWork {
			go d.worker(w)
			return true
		}
		d.workers.Add(-1)
		// Every worker busy: wait for one to take it, or to end (then
		// start another).
		select {
		case d.work <- w:
			return true
		case <-d.ended:
		}
	}
}

// worker serves first, then whatever comes, until idle for directIdle.
func (d *direct) worker(first directWork) {
	d.serve(first)
	idle := time.NewTimer(directIdle)
	defer idle.Stop()
	for {
		select {
		case w := <-d.work:
			d.serve(w)
			idle.Reset(directIdle)
		case <-idle.C:
			d.workers.Add(-1)
			// A request waiting for a busy worker starts a new one.
			select {
			case d.ended <- struct{}{}:
			default:
			}
			return
		}
	}
}

// done ends a request's stay on the direct path.
func (d *direct) done() {
	d.inflight.Add(-1)
	<-d.places
}

func (d *direct) serve(w directWork) {
	held := false
	defer func() {
		if w.bp != nil {
			d.bufs.Put(w.bp)
		}
		if !held {
			d.done()
		}
	}()
	src, h := w.src, w.h
	v := d.e.receiver.Check(w.data, src)
	if v.Response != nil {
		d.out.writeOne(directDatagram{b: v.Response, to: v.To})
	}
	if v.Pass == nil {
		receiveLog(d.e.log, UDP, src, v)
		return
	}
	req := v.Request
	if req == nil {
		// The check rewrote it (a synthetic branch): parse what it passes.
		m, err := d.e.receiver.Parse(v.Pass)
		r, ok := m.(*sip.Request)
		if err != nil || !ok {
			d.e.log.Warn("direct path: rewritten request does not parse", "source", src, "err", err)
			return
		}
		req = r
	}
	req.SetTransport("UDP")
	req.SetSource(src.String())
	to := responseTarget(req, src)

	key, err := sip.ServerTxKeyMake(req)
	if err != nil {
		// No transaction to remember (the check lets none such through,
		// but the handler still deserves its request).
		key = ""
	}
	var sh *directShard
	if key != "" {
		sh = &d.shards[maphash.String(directSeed, key)%directShards]
		sh.mu.Lock()
		if _, busy := sh.serving[key]; busy {
			sh.mu.Unlock()
			d.absorbed.Add(1)
			return
		}
		if kept, ok := sh.lookup(key); ok {
			sh.mu.Unlock()
			d.replayed.Add(1)
			d.out.writeOne(directDatagram{b: kept, to: to})
			return
		}
		sh.serving[key] = struct{}{}
		sh.mu.Unlock()
	}

	rep := h.Serve(req)
	keep := sh != nil && rep.Response != nil && h.Keep != nil && h.Keep(rep.Response)
	var out []byte
	var buf *bytes.Buffer
	if rep.Response != nil {
		buf = encode(rep.Response)
		if keep {
			out = bytes.Clone(buf.Bytes())
			putEncodeBuf(buf)
			buf = nil
		} else {
			out = buf.Bytes()
		}
	}
	// finish sends the answer: at once from the worker, or queued for
	// the sender when released from a hold (with the others released
	// together: one sendmmsg).
	finish := func(instead *sip.Response, queued bool) {
		if instead != nil {
			if buf != nil {
				putEncodeBuf(buf)
			}
			buf = encode(instead)
			out = buf.Bytes()
			if keep = sh != nil && h.Keep != nil && h.Keep(instead); keep {
				out = bytes.Clone(out)
				putEncodeBuf(buf)
				buf = nil
			}
		}
		if sh != nil {
			sh.mu.Lock()
			delete(sh.serving, key)
			if keep {
				// Remembered before it is sent: a retransmission crossing
				// the answer finds it.
				sh.keep(key, out, time.Now(), d)
			}
			sh.mu.Unlock()
		}
		switch {
		case out == nil:
			if buf != nil {
				putEncodeBuf(buf)
			}
		case queued:
			d.out.send(out, buf, to)
		default:
			d.out.writeOne(directDatagram{b: out, to: to})
			if buf != nil {
				putEncodeBuf(buf)
			}
		}
	}
	if rep.Hold == nil || rep.Response == nil {
		finish(nil, false)
		return
	}
	held = true
	rep.Hold(func(instead *sip.Response) {
		finish(instead, true)
		d.done()
	})
}

var encodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode serialises res into a pooled buffer; putEncodeBuf returns it.
func encode(res *sip.Response) *bytes.Buffer {
	b := encodeBufs.Get().(*bytes.Buffer)
	b.Reset()
	res.StringWrite(b)
	return b
}

func putEncodeBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		encodeBufs.Put(b)
	}
}

// lookup finds a kept answer (the shard's lock held).
func (sh *directShard) lookup(key string) ([]byte, bool) {
	if b, ok := sh.cur[key]; ok {
		return b, true
	}
	b, ok := sh.prev[key]
	return b, ok
}

// keep remembers an answer (the shard's lock held). The older generation
// is dropped once the newer is Timer J old, so an answer is kept between
// one and two Timer J, or earlier when the newer is full.
func (sh *directShard) keep(key string, res []byte, now time.Time, d *direct) {
	if sh.curStart.IsZero() {
		sh.curStart = now
	}
	if now.Sub(sh.curStart) >= sip.Timer_J || len(sh.cur) >= directKept/directShards/2 {
		d.kept.Add(-int64(len(sh.prev)))
		sh.prev, sh.cur, sh.curStart = sh.cur, make(map[string][]byte, len(sh.cur)), now
	}
	if _, dup := sh.cur[key]; !dup {
		d.kept.Add(1)
	}
	sh.cur[key] = res
}

// responseTarget is where a response to req goes over UDP (RFC 3261
// §18.2.2, RFC 3581 §4, as sipgo does it): the source address, at the top
// Via's port, or the source port when the Via asks for rport.
func responseTarget(req *sip.Request, src netip.AddrPort) netip.AddrPort {
	via := req.Via()
	if via == nil {
		return src
	}
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		return src
	}
	port := uint16(5060)
	if via.Port > 0 && via.Port <= 65535 {
		port = uint16(via.Port)
	}
	return netip.AddrPortFrom(src.Addr(), port)
}
