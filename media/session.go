// Package media sends and receives the lab's RTP audio: a G.711 test tone
// that differs per phone, RFC 4733 DTMF, and RFC 3550 receive statistics
// that say not only how much arrived but from WHERE, so NAT and latching
// lessons can be read off a phone's status.
//
// A Session is one call leg. Symmetric RTP (send from the receive socket) is
// a setting: with it off the session sends from a separate socket, the
// classic asymmetric-RTP phone that breaks behind NAT.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaf/g711"
)

// Ptime is the packetization interval: 160 G.711 samples per packet.
const Ptime = 20 * time.Millisecond

// Codec names the G.711 law. Values match SDP rtpmap names.
const (
	PCMU = "PCMU"
	PCMA = "PCMA"
)

// DefaultToneHz is the test tone when Config.ToneHz is 0.
const DefaultToneHz = 440

// Config configures a Session. The zero value of each optional field is its default.
type Config struct {
	// RTP is the socket the session receives on (the port in its SDP).
	// With SendConn nil RTP is also sent from it: symmetric RTP (RFC 4961).
	// The session owns it: Close closes it. Required.
	RTP net.PacketConn
	// SendConn, if set, is a separate socket RTP is sent from (symmetric
	// RTP off). Packets arriving on it are counted as stray and dropped, as
	// an asymmetric phone does. The session owns it too.
	SendConn net.PacketConn
	// Remote is where RTP is sent; the zero value sends nothing until SetRemote.
	Remote netip.AddrPort
	// Codec is PCMU (default) or PCMA, case-insensitive.
	Codec string
	// PayloadType of the audio; 0 means the codec's static type (0 or 8).
	PayloadType uint8
	// DTMFPayloadType is the negotiated telephone-event type; 0 = none, and
	// then received telephone-event packets count as another payload type.
	DTMFPayloadType uint8
	// ToneHz is the frequency of the test tone; 0 = DefaultToneHz. Give each
	// phone its own so the receiver's ToneHz shows whose audio arrived.
	ToneHz float64
	// Beeps turns the tone into 1-5 beeps of 100 ms at the start of every
	// second (a phone number you can count); 0 = continuous tone.
	Beeps int
	// Latch makes the session send to wherever the peer's RTP actually
	// comes from (comedia-style latching, what an SBC or a public server does
	// for a peer behind NAT that wrote its private address in SDP). It
	// latches on the first valid RTP packet and again after each SetRemote,
	// never on every packet, so a stray or spoofed source cannot steal the
	// stream mid-call.
	Latch bool
	// SendDisabled and RecvDisabled are the initial direction (hold);
	// both false = sendrecv. See SetDirection.
	SendDisabled bool
	RecvDisabled bool
	// RTCP, if set, is the socket for RTCP sender/receiver reports (normally
	// RTP port + 1, see ListenRTPPair); reports go to the remote's port + 1.
	// nil = no RTCP. The session owns it.
	RTCP net.PacketConn
	// RTCPInterval between reports; 0 = DefaultRTCPInterval, minimum 100 ms.
	RTCPInterval time.Duration
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.RTP == nil {
		return fmt.Errorf("%w: RTP socket is required", ErrInvalidConfig)
	}
	if c.SendConn == c.RTP {
		c.SendConn = nil // sending from the receive socket is symmetric RTP
	}
	if c.RTCP != nil && (c.RTCP == c.RTP || c.RTCP == c.SendConn) {
		return fmt.Errorf("%w: RTCP needs its own socket (rtcp-mux is not supported)", ErrInvalidConfig)
	}
	switch strings.ToUpper(c.Codec) {
	case "", PCMU:
		c.Codec = PCMU
	case PCMA:
		c.Codec = PCMA
	default:
		return fmt.Errorf("%w: codec %q (want PCMU or PCMA)", ErrInvalidConfig, c.Codec)
	}
	if c.PayloadType == 0 && c.Codec == PCMA {
		c.PayloadType = 8
	}
	if c.PayloadType > 127 {
		return fmt.Errorf("%w: payload type %d", ErrInvalidConfig, c.PayloadType)
	}
	if c.DTMFPayloadType > 127 || (c.DTMFPayloadType != 0 && c.DTMFPayloadType == c.PayloadType) {
		return fmt.Errorf("%w: telephone-event payload type %d", ErrInvalidConfig, c.DTMFPayloadType)
	}
	if c.ToneHz == 0 {
		c.ToneHz = DefaultToneHz
	}
	if math.IsNaN(c.ToneHz) || c.ToneHz < 50 || c.ToneHz > 3800 {
		return fmt.Errorf("%w: tone %v Hz outside 50-3800 (G.711 carries up to 4 kHz)", ErrInvalidConfig, c.ToneHz)
	}
	if c.Beeps < 0 || c.Beeps > 5 {
		return fmt.Errorf("%w: beeps %d outside 0-5", ErrInvalidConfig, c.Beeps)
	}
	if c.Remote.IsValid() && c.Remote.Port() == 0 {
		return fmt.Errorf("%w: remote %v has port 0", ErrInvalidConfig, c.Remote)
	}
	if c.RTCPInterval == 0 {
		c.RTCPInterval = DefaultRTCPInterval
	}
	if c.RTCPInterval < minRTCPInterval {
		return fmt.Errorf("%w: RTCP interval %v below %v", ErrInvalidConfig, c.RTCPInterval, minRTCPInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Session is one call leg's media: a sender paced at Ptime and a receiver
// keeping statistics. Create with New, drive with Run, release with Close.
type Session struct {
	cfg    Config
	log    *slog.Logger
	encode func(int16) uint8
	decode func(uint8) int16

	mu      sync.Mutex // guards everything below
	remote  netip.AddrPort
	latched bool
	send    bool
	recv    bool
	rx      rxState
	tx      txState
	rtcp    rtcpState
	// runDone is closed when the current Run's send loop ends, so a
	// SendDTMF racing with the end of Run does not wait forever.
	runDone chan struct{}

	epoch   time.Time // arrival clock origin for jitter
	dtmf    chan *dtmfReq
	running atomic.Bool
	closing atomic.Bool
	closed  chan struct{}
	// started is closed the first time Run is running, so a caller can
	// hand the session to users (DTMF) only once it can serve them.
	started     chan struct{}
	startedOnce sync.Once
	once        sync.Once
}

// New validates cfg and makes a session; nothing is sent until Run.
func New(cfg Config) (*Session, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Session{
		cfg:     cfg,
		remote:  cfg.Remote,
		send:    !cfg.SendDisabled,
		recv:    !cfg.RecvDisabled,
		epoch:   time.Now(),
		dtmf:    make(chan *dtmfReq),
		closed:  make(chan struct{}),
		started: make(chan struct{}),
	}
	s.log = cfg.Logger.With("component", "media", "local", cfg.RTP.LocalAddr().String())
	if cfg.Codec == PCMA {
		s.encode, s.decode = g711.EncodeAlawFrame, g711.DecodeAlawFrame
	} else {
		s.encode, s.decode = g711.EncodeUlawFrame, g711.DecodeUlawFrame
	}
	s.tx.init(cfg)
	s.rtcp.cname = fmt.Sprintf("siplab-%08x@%s", s.tx.hdr.SSRC, cfg.RTP.LocalAddr())
	return s, nil
}

// LocalAddr is the receive socket's address (the one to put in SDP, unless
// a public address is configured).
func (s *Session) LocalAddr() net.Addr { return s.cfg.RTP.LocalAddr() }

// SendAddr is the socket RTP leaves from: LocalAddr with symmetric RTP.
func (s *Session) SendAddr() net.Addr { return s.sendConn().LocalAddr() }

func (s *Session) sendConn() net.PacketConn {
	if s.cfg.SendConn != nil {
		return s.cfg.SendConn
	}
	return s.cfg.RTP
}

// SetRemote changes where RTP goes (a re-INVITE with a new c=/m=, or
// latching onto the address media really comes from). The zero value stops sending.
func (s *Session) SetRemote(addr netip.AddrPort) error {
	if addr.IsValid() && addr.Port() == 0 {
		return fmt.Errorf("%w: remote %v has port 0", ErrInvalidConfig, addr)
	}
	s.mu.Lock()
	old := s.remote
	s.remote = addr
	s.latched = false
	s.mu.Unlock()
	if old != addr {
		s.log.Info("rtp remote changed", "from", old, "to", addr)
	}
	return nil
}

// Remote is the current destination.
func (s *Session) Remote() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// SetDirection says whether to send and whether to take in received media
// (hold: sendonly is send=true, recv=false). Packets received while recv is
// off are still counted by source but otherwise dropped.
func (s *Session) SetDirection(send, recv bool) {
	s.mu.Lock()
	s.send, s.recv = send, recv
	s.mu.Unlock()
}

// Started is closed once Run has started (the first time).
func (s *Session) Started() <-chan struct{} { return s.started }

// Run sends and receives until ctx is done or Close is called, then returns
// nil. It can run only once at a time; after it returns the sockets stay
// open (Stats still work) until Close.
func (s *Session) Run(ctx context.Context) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	s.startedOnce.Do(func() { close(s.started) })
	runDone := make(chan struct{})
	s.mu.Lock()
	s.runDone = runDone
	s.mu.Unlock()

	var stop atomic.Bool
	var wg sync.WaitGroup
	conns := []net.PacketConn{s.cfg.RTP}
	if s.cfg.SendConn != nil {
		conns = append(conns, s.cfg.SendConn)
	}
	for i, c := range conns {
		stray := i == 1
		// Clear a deadline left by a previous Run.
		_ = c.SetReadDeadline(time.Time{})
		wg.Go(func() { s.readLoop(c, stray, &stop) })
	}

	if s.cfg.RTCP != nil {
		_ = s.cfg.RTCP.SetReadDeadline(time.Time{})
		conns = append(conns, s.cfg.RTCP)
		wg.Go(func() { s.rtcpReadLoop(&stop) })
	}

	s.log.Info("media started", "send_from", s.SendAddr().String(), "remote", s.Remote(),
		"codec", s.cfg.Codec, "pt", s.cfg.PayloadType, "tone_hz", s.cfg.ToneHz)
	s.sendLoop(ctx)
	close(runDone)

	stop.Store(true)
	for _, c := range conns {
		// Unblock the readers without closing sockets the caller may still
		// want to inspect; after Close this just fails harmlessly.
		_ = c.SetReadDeadline(time.Now())
	}
	wg.Wait()
	s.log.Info("media stopped")
	return nil
}

// Close stops Run and closes the sockets. Safe to call more than once.
func (s *Session) Close() error {
	var err error
	s.once.Do(func() {
		s.closing.Store(true)
		close(s.closed)
		err = s.cfg.RTP.Close()
		if s.cfg.SendConn != nil {
			err = errors.Join(err, s.cfg.SendConn.Close())
		}
		if s.cfg.RTCP != nil {
			err = errors.Join(err, s.cfg.RTCP.Close())
		}
	})
	return err
}

// readBufSize fits any UDP datagram a sane peer sends; bigger ones are
// truncated and then fail to parse, which counts them invalid.
const readBufSize = 1500

func (s *Session) readLoop(c net.PacketConn, stray bool, stop *atomic.Bool) {
	buf := make([]byte, readBufSize)
	udp, _ := c.(*net.UDPConn)
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if udp != nil {
			n, from, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = c.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if err != nil {
			if stop.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			// Transient errors (ICMP-reported refusals on some systems) must
			// not end a call's media.
			s.log.Debug("rtp read", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if stray {
			s.handleStray(from, time.Now())
			continue
		}
		s.handlePacket(buf[:n], from, time.Now())
	}
}
