package sipnet

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The UDP size rule every daemon shares (RFC 3261 §18):
//
//   - A response is always sent, over the transport the request came on,
//     whatever its size: IP fragments a large datagram (§18.2.2). A
//     9-binding 200 OK to a REGISTER is ~1.5 kB.
//   - A request larger than MaxUDPRequest that would go over UDP goes over
//     TCP to the same address instead, its top Via saying so (§18.1.1).
//     When the peer takes no TCP (refused, or a NAT dropping the SYN for
//     TCPTryTimeout) it is sent over UDP after all (§18.1.1 allows it),
//     with one log line per peer, and that peer is sent UDP for a while.
//   - Nothing is dropped for its size: only a datagram over the 64 KB IP
//     limit fails, and that failure is returned to the sender.
//   - A request sent with a StayOnUDP context skips the switch: it goes
//     over UDP whatever its size, as from a phone configured without it.

// MaxUDPRequest is the largest request sent over UDP when TCP is possible:
// 1300 bytes when the path MTU is unknown (RFC 3261 §18.1.1).
const MaxUDPRequest = 1300

// TCPTryTimeout bounds the TCP connect a large request tries first. The
// lab's routers drop unsolicited SYNs on their WAN side, so a NATed phone
// answers nothing: the request then goes over UDP.
const TCPTryTimeout = 500 * time.Millisecond

// udpOnlyFor is how long a peer that took no TCP is sent large requests
// over UDP straight away, and udpOnlyMax how many such peers are kept.
const (
	udpOnlyFor = 5 * time.Minute
	udpOnlyMax = 4096
)

// maxDatagram is the largest UDP payload IPv4 can carry.
const maxDatagram = 65507

func init() {
	// sipgo refuses any UDP message over UDPMTUSize-200 bytes, responses
	// included, and the refused response is never sent. The limit is a
	// process-wide variable; it is lifted here, before any socket exists
	// (every daemon imports sipnet), and the request half of the rule is
	// sizeRule's job.
	sip.UDPMTUSize = maxDatagram + 200
}

// stayOnUDPKey marks a context whose requests skip the switch to TCP.
type stayOnUDPKey struct{}

// StayOnUDP returns a context under which a request stays on UDP whatever
// its size: the RFC 3261 §18.1.1 switch to TCP is off, as on the many
// phones that send every request over UDP and let IP fragment the big
// ones (pjsip's disable_tcp_switch). A router that drops IP fragments then
// loses such a request; the lab's phones do this with `tcp_switch off`.
func StayOnUDP(ctx context.Context) context.Context {
	return context.WithValue(ctx, stayOnUDPKey{}, true)
}

func stayOnUDP(ctx context.Context) bool {
	v, _ := ctx.Value(stayOnUDPKey{}).(bool)
	return v
}

// sizeRule is the UDP clients' transaction requester: it moves large
// requests to TCP. sipgo calls it for every request its Client sends
// (TransactionRequest, and WriteRequest for ACK).
type sizeRule struct {
	e *Endpoint

	mu      sync.Mutex
	udpOnly map[string]time.Time // peer "ip:port" → until
}

func (r *sizeRule) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	tl := r.e.UA.TransactionLayer()
	if req.IsAck() {
		// An ACK has no transaction (sipgo's Client.WriteRequest). ACKs are
		// small; it goes where the request says.
		return nil, r.e.UA.TransportLayer().WriteMsg(req)
	}
	if !strings.EqualFold(req.Transport(), UDP) {
		return tl.Request(ctx, req)
	}
	size := messageSize(req)
	if size <= MaxUDPRequest {
		return tl.Request(ctx, req)
	}
	dest := req.Destination()
	log := r.e.log.With("method", string(req.Method), "to", dest, "bytes", size, "call_id", callID(req))
	if r.e.tcp == nil {
		log.Debug("request over the UDP size limit sent over UDP: this endpoint has no TCP")
		return tl.Request(ctx, req)
	}
	if stayOnUDP(ctx) {
		log.Debug("request over the UDP size limit sent over UDP: the sender turned the switch to TCP off")
		return tl.Request(ctx, req)
	}
	if r.knownUDPOnly(dest) {
		return tl.Request(ctx, req)
	}
	via := req.Via()
	laddr := req.Laddr
	req.SetTransport("TCP")
	via.Transport = "TCP"
	req.Laddr = sip.Addr{} // the connection gets its own port; Via keeps the listening one
	tctx, cancel := context.WithTimeout(ctx, TCPTryTimeout)
	tx, err := tl.Request(tctx, req)
	cancel()
	if err == nil {
		log.Debug("request over the UDP size limit sent over TCP")
		return tx, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	req.SetTransport("UDP")
	via.Transport = "UDP"
	req.Laddr = laddr
	r.markUDPOnly(dest)
	log.Info("request over the UDP size limit: the peer takes no TCP, sent over UDP (IP fragments it)", "tcp_err", err)
	return tl.Request(ctx, req)
}

func (r *sizeRule) knownUDPOnly(dest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.udpOnly[dest]
	if ok && time.Now().After(until) {
		delete(r.udpOnly, dest)
		return false
	}
	return ok
}

func (r *sizeRule) markUDPOnly(dest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.udpOnly == nil {
		r.udpOnly = map[string]time.Time{}
	}
	if len(r.udpOnly) >= udpOnlyMax {
		now := time.Now()
		for k, until := range r.udpOnly {
			if now.After(until) || len(r.udpOnly) >= udpOnlyMax {
				delete(r.udpOnly, k)
			}
		}
	}
	r.udpOnly[dest] = time.Now().Add(udpOnlyFor)
}

func messageSize(m sip.Message) int {
	var n byteCounter
	m.StringWrite(&n)
	return int(n)
}

// byteCounter counts what is written to it: the size without a buffer
// (every forwarded request is measured).
type byteCounter int

func (c *byteCounter) WriteString(s string) (int, error) {
	*c += byteCounter(len(s))
	return len(s), nil
}

func callID(req sip.Message) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
