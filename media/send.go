package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/pion/rtp"
)

// Defaults and limits for SendDTMF.
const (
	DefaultDTMFDuration = 100 * time.Millisecond
	MinDTMFDuration     = 40 * time.Millisecond
	// MaxDTMFDuration keeps the 16-bit duration field (in 8 kHz units) from
	// overflowing without segmenting the event (RFC 4733 §2.5.1.3).
	MaxDTMFDuration = 8 * time.Second
	// dtmfEndPackets is how often the final packet is sent (RFC 4733 §2.5.1.4).
	dtmfEndPackets = 3
	// dtmfGapTicks of audio separate two digits of one SendDTMF call.
	dtmfGapTicks = 2
	// maxLateTicks: if the scheduler falls further behind than this, skip
	// ahead instead of bursting packets to catch up.
	maxLateTicks = 3
)

type txState struct {
	hdr       rtp.Header
	tone      *toneGen
	ts        uint32 // timestamp of the current tick
	talkspurt bool   // last tick sent audio; the next one after a pause gets the marker
	buf       []byte
	pcm       [samplesPerPacket]int16
	payload   [samplesPerPacket]byte

	packets, bytes, dtmfPackets, errors uint64
	dtmfSent                            []byte
	lastErr                             string

	job *dtmfJob
}

type dtmfReq struct {
	events   []uint8
	digits   string
	duration time.Duration
	ctx      context.Context
	done     chan error
}

type dtmfJob struct {
	req     *dtmfReq
	idx     int    // current digit
	tick    int    // ticks into the current digit
	on      int    // ticks of the event before its end packets
	ts      uint32 // event timestamp (start of the digit)
	gapLeft int
}

func random32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return binary.BigEndian.Uint32(b[:])
}

func (t *txState) init(cfg Config) {
	// Random SSRC, sequence and timestamp origin (RFC 3550 §5.1) so two
	// legs never look alike and known-plaintext games do not apply.
	t.hdr = rtp.Header{
		Version:        2,
		PayloadType:    cfg.PayloadType,
		SequenceNumber: uint16(random32()),
		SSRC:           random32(),
	}
	t.ts = random32()
	t.tone = newToneGen(cfg.ToneHz, cfg.Beeps)
	t.buf = make([]byte, 0, 12+samplesPerPacket)
}

func (s *Session) sendLoop(ctx context.Context) {
	// Schedule by absolute time from start so timer latency never
	// accumulates into drift: tick k is due at start + k*Ptime.
	start := time.Now()
	var k int64
	rtcpTicks := max(int64(s.cfg.RTCPInterval/Ptime), 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer s.failDTMF(ErrNotRunning)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-timer.C:
		}
		if late := time.Since(start.Add(time.Duration(k) * Ptime)); late > maxLateTicks*Ptime {
			skip := int64(late / Ptime)
			k += skip
			s.mu.Lock()
			s.tx.ts += uint32(skip * samplesPerPacket)
			s.tx.tone.skip(int(skip * samplesPerPacket))
			s.tx.talkspurt = false
			s.mu.Unlock()
		}
		s.tick()
		k++
		if s.cfg.RTCP != nil && k%rtcpTicks == 0 {
			s.sendReport(time.Now())
		}
		timer.Reset(time.Until(start.Add(time.Duration(k) * Ptime)))
	}
}

// failDTMF ends a DTMF job in progress when Run stops.
func (s *Session) failDTMF(err error) {
	s.mu.Lock()
	job := s.tx.job
	s.tx.job = nil
	s.mu.Unlock()
	if job != nil {
		job.req.done <- err
	}
}

// tick produces one Ptime worth of media: a DTMF event packet while a digit
// is being sent (audio pauses), else a tone packet.
func (s *Session) tick() {
	if s.tx.job == nil {
		select {
		case req := <-s.dtmf:
			s.mu.Lock()
			s.tx.job = &dtmfJob{req: req}
			s.mu.Unlock()
		default:
		}
	}

	s.mu.Lock()
	remote, send := s.remote, s.send && s.remote.IsValid()
	t := &s.tx
	var pkt []byte
	var payloadLen int
	var done *dtmfJob
	if job := t.job; job != nil && job.gapLeft == 0 {
		pkt, done = s.dtmfPacket(job)
		payloadLen = 4
		t.talkspurt = false
		t.tone.skip(samplesPerPacket)
	} else {
		if job != nil {
			job.gapLeft--
		}
		if send {
			t.tone.fill(t.pcm[:])
			for i, v := range t.pcm {
				t.payload[i] = s.encode(v)
			}
			t.hdr.Marker = !t.talkspurt
			t.hdr.Timestamp = t.ts
			t.hdr.PayloadType = s.cfg.PayloadType
			pkt = s.marshal(t.payload[:])
			payloadLen = samplesPerPacket
			t.talkspurt = true
		} else {
			t.tone.skip(samplesPerPacket)
			t.talkspurt = false
		}
	}
	t.ts += samplesPerPacket
	if done != nil {
		t.job = nil
	}
	s.mu.Unlock()

	// Write outside the lock so a slow send never stalls the receive path;
	// t.buf (which pkt points into) belongs to the send loop alone.
	if pkt != nil && send {
		_, err := s.sendConn().WriteTo(pkt, net.UDPAddrFromAddrPort(remote))
		s.mu.Lock()
		if err != nil {
			t.errors++
			t.lastErr = err.Error()
		} else {
			t.packets++
			t.bytes += uint64(payloadLen)
		}
		s.mu.Unlock()
	}
	if done != nil {
		done.req.done <- done.req.ctx.Err()
	}
}

func (s *Session) marshal(payload []byte) []byte {
	t := &s.tx
	n, err := rtp.MarshalPacketTo(t.buf[:cap(t.buf)], &t.hdr, payload)
	t.hdr.SequenceNumber++
	if err != nil {
		// Only possible with a too small buffer, which init rules out.
		s.log.Error("rtp marshal", "err", err)
		return nil
	}
	return t.buf[:n]
}

// dtmfPacket builds the next RFC 4733 packet of job (called with mu held).
// It returns the finished job once the last digit's end packets are out.
func (s *Session) dtmfPacket(job *dtmfJob) ([]byte, *dtmfJob) {
	t := &s.tx
	if job.tick == 0 {
		job.ts = t.ts
		job.on = max(int((job.req.duration+Ptime-1)/Ptime), 2)
	}
	ev := job.req.events[job.idx]
	end := job.tick >= job.on
	dur := min(job.tick+1, job.on) * samplesPerPacket
	var p [4]byte
	payload := putEvent(p[:0], ev, end, uint16(dur))
	t.hdr.Marker = job.tick == 0
	t.hdr.Timestamp = job.ts
	t.hdr.PayloadType = s.cfg.DTMFPayloadType
	pkt := s.marshal(payload)
	t.dtmfPackets++
	job.tick++
	if job.tick < job.on+dtmfEndPackets {
		return pkt, nil
	}
	// Last end packet of this digit.
	t.dtmfSent = appendCapped(t.dtmfSent, digitForEvent(ev))
	job.idx++
	job.tick = 0
	if job.idx == len(job.req.events) || job.req.ctx.Err() != nil {
		return pkt, job
	}
	job.gapLeft = dtmfGapTicks
	return pkt, nil
}

// maxDigits bounds the DTMF history kept in stats.
const maxDigits = 256

func appendCapped(b []byte, c byte) []byte {
	if len(b) >= maxDigits {
		b = append(b[:0], b[1:]...)
	}
	return append(b, c)
}

// SendDTMF sends digits (0-9 * # A-D) as RFC 4733 events, each lasting
// duration (0 = DefaultDTMFDuration) with a short gap between digits, and
// returns when the last end packet is sent. Audio pauses while events are
// sent. It fails fast without a telephone-event payload type, when not
// sending (no remote, hold) or when Run is not running.
func (s *Session) SendDTMF(ctx context.Context, digits string, duration time.Duration) error {
	if s.cfg.DTMFPayloadType == 0 {
		return ErrNoDTMF
	}
	events, err := normalizeDigits(digits)
	if err != nil {
		return err
	}
	if duration == 0 {
		duration = DefaultDTMFDuration
	}
	if duration < MinDTMFDuration || duration > MaxDTMFDuration {
		return fmt.Errorf("%w: DTMF duration %v outside %v-%v", ErrInvalidConfig, duration, MinDTMFDuration, MaxDTMFDuration)
	}
	s.mu.Lock()
	sending := s.send && s.remote.IsValid()
	runDone := s.runDone
	s.mu.Unlock()
	if !sending {
		return ErrNotSending
	}
	if !s.running.Load() {
		return ErrNotRunning
	}
	s.log.Info("sending dtmf", "digits", digits, "duration", duration)
	req := &dtmfReq{events: events, digits: digits, duration: duration, ctx: ctx, done: make(chan error, 1)}
	select {
	case s.dtmf <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrClosed
	case <-runDone:
		return ErrNotRunning
	}
	// Once queued the job always completes or is failed by the send loop,
	// which stops early between digits if ctx is cancelled.
	return <-req.done
}
