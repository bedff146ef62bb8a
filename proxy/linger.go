package proxy

import (
	"bytes"
	"hash/maphash"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// What a transaction still owes after its final response, kept without
// the transaction.
//
// Over UDP a transaction lives on for 64*T1 (32 s) after its final
// response, to absorb retransmissions (RFC 3261 §17, RFC 6026). sipgo
// keeps the whole transaction for that time — the request as received,
// the last response, timers, and the proxy's goroutine reading the
// branch — 22 kB of heap per answered call (BenchmarkCallMemory), so the
// heap grew with the rate: held = rate × 32 s, 0.8-1.3 GiB of RSS after
// the side-by-side bench's overload steps. What those 32 s require is
// much smaller, so the proxy ends the transactions as soon as their final
// response is through and keeps only that, keyed by a 64-bit hash of the
// transaction key:
//
//   - an INVITE server transaction answered 2xx (RFC 6026 "Accepted",
//     Timer L): the 2xx goes upstream outside the transaction, which then
//     ends; a retransmitted INVITE is absorbed, a CANCEL gets 200 and
//     changes nothing (RFC 3261 §9.2). Kept: the key.
//   - a non-INVITE server transaction over UDP ("Completed", Timer J): a
//     retransmitted request gets the same final response again. Kept: the
//     response's bytes and where they went (~0.3 kB for a 200 to BYE).
//   - an INVITE client transaction answered 2xx ("Accepted", Timer M):
//     retransmissions of the 2xx are relayed upstream (the proxy core
//     does that, statelessly, RFC 3261 §16.7); other responses on it are
//     dropped. Kept: where upstream is. (See AcceptedBranchHold.)
//   - a non-INVITE client transaction ("Completed", Timer K): it only
//     absorbs retransmissions of its final response. It is ended at that
//     response; later copies match nothing and are dropped, which is the
//     same thing.
//
// Non-2xx final responses to INVITE keep sipgo's transactions: they must
// be retransmitted until the ACK (Timer G) and are rare. So do stateless
// answers (407, 503...), which keep nothing at all.
//
// The tables are two generations each, the older dropped when the newer
// is 64*T1 old, so an entry lives between 32 and 64 s; a generation that
// reaches lingerMax entries is retired early (counted in Cut), so memory
// stays bounded at any rate — what is forgotten early then behaves as in
// RFC 3261 before RFC 6026 (a very late retransmission is routed again).

// lingerFor is how long the tables keep an entry at least: 64*T1.
var lingerFor = 64 * sip.T1

// lingerMax bounds one generation: at ~1,000 calls/s a generation of the
// server table takes ~64,000 entries in 32 s (an INVITE and a BYE per
// call). Two generations at most, of ~0.6 kB for the largest entries.
const lingerMax = 1 << 17

// AcceptedBranchHold is what a process running the proxy alone sets
// sip.Timer_M to (proxycli): how long sipgo keeps an INVITE client
// transaction after its 2xx. sipgo frees an ended transaction only when
// that timer fires (ClientTx.delete does not stop Timer M; nor does
// ServerTx.delete stop Timer L, which the proxy avoids by sending 2xx
// upstream outside the transaction), and the proxy relays the 2xx
// retransmissions from its own table anyway. A process-wide sipgo
// setting: a user agent in the same process would stop re-ACKing
// retransmitted 2xx after it.
var AcceptedBranchHold = sip.T1

// lingerMap is a two-generation table keyed by a hash of the transaction
// key. It is safe for concurrent use.
type lingerMap[V any] struct {
	seed maphash.Seed
	life time.Duration
	max  int
	now  func() time.Time

	mu        sync.Mutex
	cur, prev map[uint64]V
	rotated   time.Time
	cut       atomic.Uint64
}

func newLingerMap[V any](life time.Duration, max int, now func() time.Time) *lingerMap[V] {
	return &lingerMap[V]{seed: maphash.MakeSeed(), life: life, max: max, now: now,
		cur: map[uint64]V{}, rotated: now()}
}

// rotate retires the current generation once it is life old or full;
// m.mu is held.
func (m *lingerMap[V]) rotate() {
	now := m.now()
	age := now.Sub(m.rotated)
	switch {
	case age >= 2*m.life:
		m.prev, m.cur, m.rotated = nil, map[uint64]V{}, now
	case age >= m.life:
		m.prev, m.cur, m.rotated = m.cur, map[uint64]V{}, now
	case len(m.cur) >= m.max:
		m.cut.Add(1)
		m.prev, m.cur, m.rotated = m.cur, map[uint64]V{}, now
	}
}

func (m *lingerMap[V]) put(key string, v V) {
	h := maphash.String(m.seed, key)
	m.mu.Lock()
	m.rotate()
	m.cur[h] = v
	m.mu.Unlock()
}

func (m *lingerMap[V]) get(key string) (V, bool) {
	h := maphash.String(m.seed, key)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rotate()
	if v, ok := m.cur[h]; ok {
		return v, true
	}
	v, ok := m.prev[h]
	return v, ok
}

// size is how many entries are kept now, and how many generations were
// retired early since start.
func (m *lingerMap[V]) size() (int, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rotate()
	return len(m.cur) + len(m.prev), m.cut.Load()
}

// answered is what remains of a server transaction: nil res for an INVITE
// answered 2xx (absorb), else the final response to send again.
type answered struct {
	res []byte
	in  *endpoint
	to  netip.AddrPort
}

// accepted is what remains of an INVITE branch answered 2xx: where its
// 2xx retransmissions go.
type accepted struct {
	in        *endpoint
	transport string
	dest      string
}

// LingerStatus is the state kept of finished transactions.
type LingerStatus struct {
	// Server and Client count the transactions whose remaining duties
	// are kept (answered requests, accepted INVITE branches).
	Server int `json:"server"`
	Client int `json:"client"`
	// Cut counts generations retired before 64*T1 because they were
	// full: entries forgotten early.
	Cut uint64 `json:"cut"`
}

func (p *Proxy) lingerStatus() LingerStatus {
	s, sc := p.answered.size()
	c, cc := p.accepted.size()
	return LingerStatus{Server: s, Client: c, Cut: sc + cc}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// keepAnswer ends a non-INVITE server transaction over UDP at its final
// response, keeping the response's bytes for the retransmissions of the
// request that may follow (Timer J).
func (u *upstream) keepAnswer(res *sip.Response) {
	if sip.IsReliable(u.req.Transport()) {
		return // no retransmissions: sipgo ends it at once itself
	}
	to, err := netip.ParseAddrPort(res.Destination())
	if err != nil {
		return // keep sipgo's transaction
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	u.p.answered.put(serverKey(u.req, u.tx), answered{res: bytes.Clone(buf.Bytes()), in: u.in, to: to})
	bufPool.Put(buf)
	u.tx.Terminate()
}

// acceptBranch keeps where the 2xx retransmissions of branch b go, from
// its first 2xx on: sipgo's transaction relays them through relay2xx
// while it lives, and unmatchedResponse after.
func (p *Proxy) acceptBranch(up *upstream, b *branch) {
	key, err := sip.ClientTxKeyMake(b.req)
	if err != nil {
		return // cannot happen: we made its branch
	}
	transport, dest := up.statelessDest()
	p.accepted.put(key, accepted{in: up.in, transport: transport, dest: dest})
}

// acceptUpstream ends an INVITE's server transaction at its first 2xx
// (sent outside it, see upstream.send), keeping the key to absorb
// retransmissions of the INVITE. After a CANCEL the transaction stays:
// sipgo's 487 in it waits for its ACK.
func (p *Proxy) acceptUpstream(up *upstream) {
	if up.cancelled.Load() {
		return
	}
	if !sip.IsReliable(up.req.Transport()) {
		p.answered.put(serverKey(up.req, up.tx), answered{})
	}
	up.tx.Terminate()
}

// lingered handles a request that belongs to a transaction already ended
// with its duties kept: it reports true if the request was dealt with.
func (p *Proxy) lingered(req *sip.Request, tx sip.ServerTransaction) bool {
	if tx == nil || req.IsAck() {
		return false // an ACK is never absorbed: the 2xx's goes end to end
	}
	key := serverKey(req, tx)
	if req.IsCancel() {
		key = strings.TrimSuffix(key, string(sip.CANCEL)) + string(sip.INVITE)
	}
	a, ok := p.answered.get(key)
	if !ok {
		return false
	}
	switch {
	case req.IsCancel():
		if a.res != nil {
			return false
		}
		// RFC 3261 §9.2: the INVITE was answered already; the CANCEL has
		// no effect, and its own transaction answers it 200.
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		if err := tx.Respond(res); err != nil {
			p.log.Debug("200 to a late CANCEL not sent", "call_id", callIDOf(req), "err", err)
		}
		tx.Terminate()
	case a.res == nil:
		p.log.Debug("retransmitted INVITE absorbed: answered 2xx already", "call_id", callIDOf(req))
	default:
		if _, err := a.in.ep.PacketConn().WriteTo(a.res, net.UDPAddrFromAddrPort(a.to)); err != nil {
			p.log.Debug("final response not sent again", "call_id", callIDOf(req), "to", a.to, "err", err)
		}
	}
	p.stats.absorbed.Add(1)
	return true
}

// unmatchedResponse takes the responses that match no client transaction:
// retransmissions of a 2xx to an accepted INVITE branch are relayed
// upstream; anything else (a retransmitted final response to a finished
// branch, a stray) is dropped, as a transaction absorbs it.
func (p *Proxy) unmatchedResponse(res *sip.Response) {
	if !p.relay(res, false) {
		p.stats.strays.Add(1)
	}
}

// relay2xx relays a 2xx retransmission sipgo's accepted client transaction
// passed up.
func (p *Proxy) relay2xx(res *sip.Response) { p.relay(res, true) }

// relay sends a retransmitted 2xx to INVITE upstream if its branch was
// accepted; it reports whether the response was one. shared: sipgo still
// holds res, so it is copied before our Via comes off.
func (p *Proxy) relay(res *sip.Response, shared bool) bool {
	cseq := res.CSeq()
	if !res.IsSuccess() || cseq == nil || cseq.MethodName != sip.INVITE {
		return false
	}
	key, err := sip.ClientTxKeyMake(res)
	if err != nil {
		return false
	}
	a, ok := p.accepted.get(key)
	if !ok {
		return false
	}
	if shared {
		res = res.Clone()
	}
	res.RemoveHeader("Via")
	if res.Via() == nil {
		return true // addressed to us alone
	}
	res.SetTransport(a.transport)
	res.SetDestination(a.dest)
	p.stats.retrans.Add(1)
	p.stats.response(res.StatusCode)
	if err := a.in.ep.Server.WriteResponse(res); err != nil {
		p.log.Warn("2xx retransmission not relayed", "dest", a.dest, "err", err)
	}
	return true
}

// serverKey is the key sipgo filed tx under (RFC 3261 §17.2.3 matching).
func serverKey(req *sip.Request, tx sip.ServerTransaction) string {
	if k, ok := tx.(interface{ Key() string }); ok {
		return k.Key()
	}
	key, _ := sip.ServerTxKeyMake(req)
	return key
}

// statelessDest is where a response to up's request goes outside its
// transaction: the transport it came on, and for a stream the connection
// it came on.
func (u *upstream) statelessDest() (transport, dest string) {
	transport = u.req.Transport()
	if sip.IsReliable(transport) {
		return transport, u.req.Source()
	}
	return transport, u.p.responseDest(u.req, u.p.Settings().RPort)
}
