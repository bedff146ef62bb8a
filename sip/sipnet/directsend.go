package sipnet

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// directSender sends the direct path's answers from the listening socket:
// writeOne at once, or send queues the datagram for one goroutine that
// sends what has queued up, with one sendmmsg per directBatch datagrams
// on an IPv4 socket (x/net/ipv4's WriteBatch), so a group commit's 200s
// released together cost one system call instead of one each. A dual-stack or IPv6
// socket sends one datagram at a time (WriteBatch marshals IPv4
// destinations as AF_INET, which such a socket refuses). The goroutine
// ends when idle for directIdle and starts again with the next answer.
type directSender struct {
	conn net.PacketConn
	log  *slog.Logger
	pc4  *ipv4.PacketConn // nil: one datagram at a time

	mu      sync.Mutex
	q       []directDatagram
	running bool
	wake    chan struct{}

	// The sender goroutine's own, reused from batch to batch.
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	ips   [][4]byte
	bufs  [][1][]byte
}

// directDatagram is one answer to send; buf, when set, holds b and goes
// back to the pool once sent.
type directDatagram struct {
	b   []byte
	buf *bytes.Buffer
	to  netip.AddrPort
}

func (s *directSender) init(conn net.PacketConn, log *slog.Logger) {
	s.conn, s.log, s.wake = conn, log, make(chan struct{}, 1)
	if uc, ok := conn.(*net.UDPConn); ok {
		// Bound to one IPv4 address: an AF_INET socket. (A wildcard
		// may be a dual-stack AF_INET6 one.)
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil && !la.IP.IsUnspecified() {
			s.pc4 = ipv4.NewPacketConn(uc)
		}
	}
}

// send queues b for to; buf, when not nil, is b's pooled buffer.
func (s *directSender) send(b []byte, buf *bytes.Buffer, to netip.AddrPort) {
	if !to.IsValid() {
		if buf != nil {
			putEncodeBuf(buf)
		}
		return
	}
	s.mu.Lock()
	s.q = append(s.q, directDatagram{b: b, buf: buf, to: to})
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.run()
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *directSender) run() {
	var q []directDatagram
	idle := time.NewTimer(directIdle)
	defer idle.Stop()
	for {
		s.mu.Lock()
		q, s.q = s.q, q[:0]
		if len(q) == 0 {
			s.mu.Unlock()
			idle.Reset(directIdle)
			select {
			case <-s.wake:
				continue
			case <-idle.C:
			}
			s.mu.Lock()
			if len(s.q) > 0 {
				s.mu.Unlock()
				continue
			}
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for i := 0; i < len(q); i += directBatch {
			s.write(q[i:min(i+directBatch, len(q))])
		}
		for i := range q {
			if q[i].buf != nil {
				putEncodeBuf(q[i].buf)
			}
			q[i] = directDatagram{}
		}
		if cap(q) > 4096 { // do not keep a huge queue after a burst
			q = nil
		}
	}
}

// write sends the datagrams of one batch. A response is sent whatever
// its size, as the size rule says (size.go).
func (s *directSender) write(q []directDatagram) {
	if s.pc4 == nil || len(q) == 1 {
		for _, d := range q {
			s.writeOne(d)
		}
		return
	}
	ms := s.batch(q)
	for len(ms) > 0 {
		n, err := s.pc4.WriteBatch(ms, 0)
		if err != nil {
			// The first datagram failed: say so, and go on with the rest.
			s.log.Warn("direct path: response not sent", "to", ms[0].Addr, "err", err)
			n = 1
		}
		ms = ms[max(n, 1):]
	}
}

// batch fills the reused messages for q: IPv4 destinations only (an
// IPv4 socket has no others).
func (s *directSender) batch(q []directDatagram) []ipv4.Message {
	if len(s.msgs) < len(q) {
		s.msgs = make([]ipv4.Message, directBatch)
		s.addrs = make([]net.UDPAddr, directBatch)
		s.ips = make([][4]byte, directBatch)
		s.bufs = make([][1][]byte, directBatch)
	}
	ms := s.msgs[:0]
	for i, d := range q {
		a := d.to.Addr().Unmap()
		if !a.Is4() {
			s.writeOne(d) // cannot happen on an IPv4 socket
			continue
		}
		s.ips[i] = a.As4()
		s.addrs[i] = net.UDPAddr{IP: s.ips[i][:], Port: int(d.to.Port())}
		s.bufs[i][0] = d.b
		ms = append(ms, ipv4.Message{Buffers: s.bufs[i][:], Addr: &s.addrs[i]})
	}
	return ms
}

// writeOne sends one datagram now. A response is sent whatever its size,
// as the size rule says (size.go).
func (s *directSender) writeOne(d directDatagram) {
	if !d.to.IsValid() {
		return
	}
	var err error
	if uc, ok := s.conn.(*net.UDPConn); ok {
		_, err = uc.WriteToUDPAddrPort(d.b, d.to)
	} else {
		_, err = s.conn.WriteTo(d.b, net.UDPAddrFromAddrPort(d.to))
	}
	if err != nil {
		s.log.Warn("direct path: response not sent", "to", d.to, "err", err)
	}
}
