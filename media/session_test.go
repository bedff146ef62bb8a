package media

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestTwoSessionsHearEachOther(t *testing.T) {
	for _, codec := range []string{PCMU, PCMA} {
		t.Run(codec, func(t *testing.T) {
			aConn, bConn := listen(t), listen(t)
			began := time.Now()
			a := start(t, Config{RTP: aConn, Remote: addrOf(bConn), Codec: codec, ToneHz: 440, DTMFPayloadType: 101})
			b := start(t, Config{RTP: bConn, Remote: addrOf(aConn), Codec: codec, ToneHz: 1000, Beeps: 2, DTMFPayloadType: 101})

			const want = 60
			waitFor(t, "audio both ways", func() bool {
				return a.Stats().Received.AudioPackets >= want && b.Stats().Received.AudioPackets >= want
			})
			elapsed := time.Since(began)
			sa, sb := a.Stats(), b.Stats()
			// Pacing: never ahead of the 20 ms schedule (a burst would be), and
			// not wildly behind it either.
			for _, st := range []Stats{sa, sb} {
				if max := uint64(elapsed/Ptime) + 2; st.Sent.Packets > max {
					t.Errorf("%s sent %d packets in %v, schedule allows %d", st.Local, st.Sent.Packets, elapsed, max)
				}
			}
			check := func(name string, rx ReceivedStats, peer Stats, peerRTP netip.AddrPort, hz float64) {
				t.Helper()
				if rx.Lost != 0 || rx.Expected < want || rx.Invalid != 0 || rx.OtherPTPackets != 0 {
					t.Errorf("%s: expected %d lost %d invalid %d other %d", name, rx.Expected, rx.Lost, rx.Invalid, rx.OtherPTPackets)
				}
				if rx.FirstSource != peerRTP || rx.LastSource != peerRTP || len(rx.Sources) != 1 {
					t.Errorf("%s: sources %v first %v, want only %v", name, rx.Sources, rx.FirstSource, peerRTP)
				}
				if rx.SSRC != peer.Sent.SSRC || rx.PayloadType != peer.PayloadType {
					t.Errorf("%s: ssrc %x pt %d, want peer's %x %d", name, rx.SSRC, rx.PayloadType, peer.Sent.SSRC, peer.PayloadType)
				}
				if math.Abs(rx.ToneHz-hz) > hz*0.02 {
					t.Errorf("%s: heard %v Hz, peer sends %v Hz", name, rx.ToneHz, hz)
				}
				if rx.JitterMs > 20 {
					t.Errorf("%s: jitter %v ms on loopback", name, rx.JitterMs)
				}
			}
			check("a", sa.Received, sb, addrOf(bConn), 1000)
			check("b", sb.Received, sa, addrOf(aConn), 440)
			// Continuous tone: about -13.5 dBFS (0.3 of full scale, RMS).
			if l := sb.Received.LevelDBFS; l < -15 || l > -12 {
				t.Errorf("b heard level %v dBFS", l)
			}
			if _, err := json.Marshal(sa); err != nil {
				t.Errorf("stats not JSON-encodable: %v", err)
			}
			if s := sa.String(); !strings.Contains(s, addrOf(bConn).String()) {
				t.Errorf("text status lacks the source:\n%s", s)
			}
		})
	}
}

// With symmetric RTP off the peer sees media from the separate send
// socket, and a peer that latches onto it sends into a socket nobody
// reads: the one-way-audio NAT bug, visible in stats.
func TestAsymmetricRTP(t *testing.T) {
	aRecv, aSend, bConn := listen(t), listen(t), listen(t)
	a := start(t, Config{RTP: aRecv, SendConn: aSend, Remote: addrOf(bConn), ToneHz: 600})
	b := start(t, Config{RTP: bConn, Remote: addrOf(aRecv), ToneHz: 800})

	waitFor(t, "b hears a", func() bool { return b.Stats().Received.AudioPackets >= 10 })
	rx := b.Stats().Received
	if rx.FirstSource != addrOf(aSend) || rx.FirstSource == addrOf(aRecv) {
		t.Fatalf("b saw media from %v; a receives on %v and sends from %v", rx.FirstSource, addrOf(aRecv), addrOf(aSend))
	}
	if st := a.Stats(); st.Symmetric || st.SendFrom != aSend.LocalAddr().String() {
		t.Errorf("a stats: symmetric %v send_from %s", st.Symmetric, st.SendFrom)
	}
	waitFor(t, "a hears b", func() bool { return a.Stats().Received.AudioPackets >= 5 })

	// b latches: answers to where a's media came from.
	if err := b.SetRemote(rx.LastSource); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stray packets at a", func() bool { return a.Stats().Received.StrayPackets >= 10 })
	before := a.Stats().Received.AudioPackets
	time.Sleep(100 * time.Millisecond)
	st := a.Stats().Received
	// At most one packet was already in flight when b switched.
	if st.AudioPackets > before+1 {
		t.Errorf("a still receives audio after b latched: %d -> %d", before, st.AudioPackets)
	}
	if st.StraySource != addrOf(bConn) {
		t.Errorf("stray source %v, want %v", st.StraySource, addrOf(bConn))
	}
}

func TestLossAndSequence(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint16
		counted  uint64 // packets that reach the session
		expected uint64
		lost     uint64
	}{
		{"contiguous", []uint16{100, 101, 102, 103, 104}, 5, 5, 0},
		{"two skipped", []uint16{100, 101, 102, 104, 106, 107}, 6, 8, 2},
		{"wraparound", []uint16{65533, 65534, 65535, 0, 1, 3}, 6, 7, 1},
		{"wraparound twice as far", []uint16{65535, 1, 2}, 3, 4, 1},
		{"reordered", []uint16{10, 12, 11, 13}, 4, 4, 0},
		{"duplicates clamp to zero", []uint16{10, 11, 11, 12, 12}, 5, 3, 0},
		// A jump larger than MAX_DROPOUT is ignored once, then taken as a
		// sender restart: the old segment's loss is kept, the new starts clean.
		{"sender restart", []uint16{10, 11, 13, 20000, 20001, 20002}, 6, 4 + 2, 1},
		{"single stray far packet", []uint16{10, 11, 20000, 12}, 4, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			s := start(t, Config{RTP: conn})
			tx := newRawSender(t, addrOf(conn))
			for i, seq := range tt.seqs {
				tx.rtp(rtp.Header{PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(i * 160), SSRC: 0xabc}, make([]byte, 160))
			}
			waitFor(t, "packets", func() bool { return s.Stats().Received.Packets == tt.counted })
			rx := s.Stats().Received
			if rx.Expected != tt.expected || rx.Lost != tt.lost {
				t.Errorf("expected %d lost %d, want %d %d", rx.Expected, rx.Lost, tt.expected, tt.lost)
			}
			wantPct := 100 * float64(tt.lost) / float64(tt.expected)
			if math.Abs(rx.LossPercent-wantPct) > 0.01 {
				t.Errorf("loss %v%%, want %v%%", rx.LossPercent, wantPct)
			}
			if rx.FirstSource != addrOf(tx.conn) {
				t.Errorf("source %v, want %v", rx.FirstSource, addrOf(tx.conn))
			}
		})
	}
}

func TestSSRCChangeKeepsEarlierLoss(t *testing.T) {
	conn := listen(t)
	s := start(t, Config{RTP: conn})
	tx := newRawSender(t, addrOf(conn))
	for _, seq := range []uint16{1, 2, 4} { // one lost
		tx.rtp(rtp.Header{SequenceNumber: seq, SSRC: 1}, make([]byte, 160))
	}
	for _, seq := range []uint16{500, 501, 502} {
		tx.rtp(rtp.Header{SequenceNumber: seq, SSRC: 2}, make([]byte, 160))
	}
	waitFor(t, "packets", func() bool { return s.Stats().Received.Packets == 6 })
	rx := s.Stats().Received
	if rx.Expected != 7 || rx.Lost != 1 || rx.SSRC != 2 || rx.SSRCChanges != 1 || len(rx.SSRCs) != 2 {
		t.Errorf("expected %d lost %d ssrc %d changes %d seen %v", rx.Expected, rx.Lost, rx.SSRC, rx.SSRCChanges, rx.SSRCs)
	}
}

func TestJitter(t *testing.T) {
	conn := listen(t)
	s := start(t, Config{RTP: conn})
	tx := newRawSender(t, addrOf(conn))
	// Timestamps claim 20 ms spacing but packets leave back to back: each
	// transit difference is ~160 units, so jitter climbs toward 160 (A.8).
	for i := range 40 {
		tx.rtp(rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 7}, make([]byte, 160))
	}
	waitFor(t, "packets", func() bool { return s.Stats().Received.Packets == 40 })
	rx := s.Stats().Received
	// After n steps of d=160 from 0: 160*(1-(15/16)^n); n=39 gives ~148.
	if rx.JitterTS < 90 || rx.JitterTS > 161 {
		t.Errorf("jitter %v ts units, want ~148", rx.JitterTS)
	}
	if math.Abs(rx.JitterMs-rx.JitterTS/8) > 0.02 {
		t.Errorf("jitter %v ms vs %v ts", rx.JitterMs, rx.JitterTS)
	}
}

func TestGarbageIgnored(t *testing.T) {
	conn := listen(t)
	s := start(t, Config{RTP: conn, DTMFPayloadType: 101})
	tx := newRawSender(t, addrOf(conn))

	rr, err := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	badPadding := []byte{0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff} // P bit, pad length 255 > packet
	garbage := [][]byte{
		{},
		{0x80},
		[]byte("REGISTER sip:x SIP/2.0\r\n\r\n"),
		make([]byte, 12), // version 0
		badPadding,
		rr,
		stun,
		{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}, // extension longer than packet
	}
	for _, g := range garbage {
		tx.raw(g)
	}
	// A DTMF packet with a truncated payload, a PCMA packet on a PCMU
	// session, then good audio: the session must still work.
	tx.rtp(rtp.Header{PayloadType: 101, SequenceNumber: 1, SSRC: 5}, []byte{1, 0x80})
	tx.rtp(rtp.Header{PayloadType: 8, SequenceNumber: 2, SSRC: 5}, make([]byte, 160))
	tx.rtp(rtp.Header{PayloadType: 0, SequenceNumber: 3, SSRC: 5}, make([]byte, 160))
	waitFor(t, "good packet after garbage", func() bool { return s.Stats().Received.AudioPackets == 1 })
	rx := s.Stats().Received
	if rx.Invalid != uint64(len(garbage))+1 {
		t.Errorf("invalid %d, want %d", rx.Invalid, len(garbage)+1)
	}
	if rx.OtherPTPackets != 1 || rx.DTMF != "" || rx.Packets != 3 || rx.Lost != 0 {
		t.Errorf("other pt %d dtmf %q packets %d lost %d", rx.OtherPTPackets, rx.DTMF, rx.Packets, rx.Lost)
	}
	if len(rx.PayloadTypes) != 3 {
		t.Errorf("payload types seen %v", rx.PayloadTypes)
	}
}

func TestDTMFBetweenSessions(t *testing.T) {
	aConn, bConn := listen(t), listen(t)
	a := start(t, Config{RTP: aConn, Remote: addrOf(bConn), DTMFPayloadType: 101})
	b := start(t, Config{RTP: bConn, Remote: addrOf(aConn), DTMFPayloadType: 101})

	const digits = "123#*AD9"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.SendDTMF(ctx, strings.ToLower(digits), 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "digits", func() bool { return len(b.Stats().Received.DTMF) >= len(digits) })
	time.Sleep(60 * time.Millisecond) // let any duplicate end packet land
	rx := b.Stats().Received
	if rx.DTMF != digits {
		t.Errorf("b received %q, want %q (each once)", rx.DTMF, digits)
	}
	// 40 ms = 2 event packets + 3 end packets per digit, in the audio
	// stream's sequence space, so no loss either.
	if rx.DTMFPackets != 5*uint64(len(digits)) || rx.Lost != 0 {
		t.Errorf("dtmf packets %d lost %d", rx.DTMFPackets, rx.Lost)
	}
	if st := a.Stats().Sent; st.DTMF != digits || st.DTMFPackets != rx.DTMFPackets {
		t.Errorf("a sent %q in %d packets", st.DTMF, st.DTMFPackets)
	}
}

func TestDTMFWireFormat(t *testing.T) {
	conn := listen(t)
	rx := newRawReceiver(t)
	s := start(t, Config{RTP: conn, Remote: addrOf(rx.conn), DTMFPayloadType: 96})
	// Skip the first audio packets, then send one digit of 100 ms.
	first := rx.next(t)
	if !first.p.Marker || first.p.PayloadType != 0 || len(first.p.Payload) != 160 {
		t.Errorf("first packet: marker %v pt %d len %d", first.p.Marker, first.p.PayloadType, len(first.p.Payload))
	}
	go func() {
		if err := s.SendDTMF(context.Background(), "5", 100*time.Millisecond); err != nil {
			t.Errorf("SendDTMF: %v", err)
		}
	}()
	var ev []rtp.Packet
	prev := first.p
	for len(ev) < 8 { // 5 event packets + 3 end packets
		p := rx.next(t).p
		if p.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("sequence jumps %d -> %d", prev.SequenceNumber, p.SequenceNumber)
		}
		if p.SSRC != first.p.SSRC {
			t.Fatalf("ssrc changed")
		}
		prev = p
		if p.PayloadType == 96 {
			ev = append(ev, p)
		} else if len(ev) > 0 {
			t.Fatalf("audio packet during an event")
		}
	}
	for i, p := range ev {
		end := p.Payload[1]&0x80 != 0
		dur := uint16(p.Payload[2])<<8 | uint16(p.Payload[3])
		wantDur := uint16(min(i+1, 5) * 160)
		if p.Payload[0] != 5 || p.Timestamp != ev[0].Timestamp || p.Marker != (i == 0) || end != (i >= 5) || dur != wantDur {
			t.Errorf("event packet %d: event %d ts %d marker %v end %v dur %d (want dur %d)",
				i, p.Payload[0], p.Timestamp, p.Marker, end, dur, wantDur)
		}
	}
	// Audio resumes, with the marker of a new talkspurt and a timestamp
	// that kept running during the event.
	p := rx.next(t).p
	for p.PayloadType != 0 {
		p = rx.next(t).p
	}
	if !p.Marker || int32(p.Timestamp-ev[0].Timestamp) < 8*160 {
		t.Errorf("audio after event: marker %v ts +%d", p.Marker, p.Timestamp-ev[0].Timestamp)
	}
}

func TestDTMFDedupByTimestamp(t *testing.T) {
	conn := listen(t)
	s := start(t, Config{RTP: conn, DTMFPayloadType: 101})
	tx := newRawSender(t, addrOf(conn))
	seq := uint16(0)
	send := func(ts uint32, event byte, end bool) {
		flags := byte(10)
		if end {
			flags |= 0x80
		}
		seq++
		tx.rtp(rtp.Header{PayloadType: 101, SequenceNumber: seq, Timestamp: ts, SSRC: 9}, []byte{event, flags, 0, 160})
	}
	send(1000, 5, false)
	send(1000, 5, true)
	send(1000, 5, true)
	send(1000, 5, true)
	send(2000, 5, true) // same digit again, new event: counts
	send(3000, 11, false)
	send(3000, 11, true)
	send(3000, 11, true)
	waitFor(t, "packets", func() bool { return s.Stats().Received.Packets == 8 })
	if got := s.Stats().Received.DTMF; got != "55#" {
		t.Errorf("digits %q, want 55#", got)
	}
}

func TestSetRemoteMidCall(t *testing.T) {
	aConn, b1Conn, b2Conn := listen(t), listen(t), listen(t)
	a := start(t, Config{RTP: aConn, Remote: addrOf(b1Conn), ToneHz: 700})
	b1 := start(t, Config{RTP: b1Conn})
	b2 := start(t, Config{RTP: b2Conn})
	waitFor(t, "b1 hears a", func() bool { return b1.Stats().Received.AudioPackets >= 5 })
	if b2.Stats().Received.Packets != 0 {
		t.Fatal("b2 got packets before the switch")
	}
	if err := a.SetRemote(addrOf(b2Conn)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b2 hears a", func() bool { return b2.Stats().Received.AudioPackets >= 10 })
	n := b1.Stats().Received.AudioPackets
	time.Sleep(60 * time.Millisecond)
	if got := b1.Stats().Received.AudioPackets; got != n {
		t.Errorf("b1 still receives after SetRemote: %d -> %d", n, got)
	}
	if rx := b2.Stats().Received; rx.Lost != 0 || math.Abs(rx.ToneHz-700) > 14 {
		t.Errorf("b2: lost %d tone %v", rx.Lost, rx.ToneHz)
	}
	if a.Stats().Remote != addrOf(b2Conn) {
		t.Errorf("a remote %v", a.Stats().Remote)
	}
	if err := a.SetRemote(netip.AddrPortFrom(loopback, 0)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("port 0 accepted: %v", err)
	}
}

func TestHold(t *testing.T) {
	aConn, bConn := listen(t), listen(t)
	a := start(t, Config{RTP: aConn, Remote: addrOf(bConn), DTMFPayloadType: 101})
	b := start(t, Config{RTP: bConn, Remote: addrOf(aConn)})
	waitFor(t, "b hears a", func() bool { return b.Stats().Received.AudioPackets >= 5 })

	a.SetDirection(false, false) // inactive
	if err := a.SendDTMF(context.Background(), "1", 0); !errors.Is(err, ErrNotSending) {
		t.Errorf("SendDTMF on hold: %v", err)
	}
	n := a.Stats().Sent.Packets
	waitFor(t, "a drops b's audio", func() bool { return a.Stats().Received.DroppedRecvDisabled >= 5 })
	if got := a.Stats().Sent.Packets; got > n+1 {
		t.Errorf("a kept sending on hold: %d -> %d", n, got)
	}
	a.SetDirection(true, true)
	waitFor(t, "a resumes", func() bool { return a.Stats().Sent.Packets >= n+5 })
	if rx := b.Stats().Received; rx.Lost != 0 {
		// Hold pauses sending without consuming sequence numbers.
		t.Errorf("hold caused loss %d", rx.Lost)
	}
}

func TestSendDTMFErrors(t *testing.T) {
	conn := listen(t)
	noDTMF, err := New(Config{RTP: conn, Remote: netip.MustParseAddrPort("127.0.0.1:9"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer noDTMF.Close()
	if err := noDTMF.SendDTMF(context.Background(), "1", 0); !errors.Is(err, ErrNoDTMF) {
		t.Errorf("no PT: %v", err)
	}
	conn2 := listen(t)
	s, err := New(Config{RTP: conn2, Remote: netip.MustParseAddrPort("127.0.0.1:9"), DTMFPayloadType: 101, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		digits string
		dur    time.Duration
		want   error
	}{
		{"12x", 0, ErrBadDigit},
		{"", 0, ErrBadDigit},
		{"1", 10 * time.Millisecond, ErrInvalidConfig},
		{"1", 10 * time.Second, ErrInvalidConfig},
		{"1", 0, ErrNotRunning},
	}
	for _, tt := range tests {
		if err := s.SendDTMF(context.Background(), tt.digits, tt.dur); !errors.Is(err, tt.want) {
			t.Errorf("SendDTMF(%q, %v) = %v, want %v", tt.digits, tt.dur, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	conn := listen(t)
	defer conn.Close()
	tests := []struct {
		name   string
		cfg    Config
		ok     bool
		wantPT uint8
	}{
		{"defaults", Config{RTP: conn}, true, 0},
		{"pcma gets static 8", Config{RTP: conn, Codec: "pcma"}, true, 8},
		{"dynamic pt kept", Config{RTP: conn, Codec: PCMU, PayloadType: 96}, true, 96},
		{"no socket", Config{}, false, 0},
		{"g729", Config{RTP: conn, Codec: "G729"}, false, 0},
		{"pt range", Config{RTP: conn, PayloadType: 200}, false, 0},
		{"dtmf pt equals audio pt", Config{RTP: conn, PayloadType: 96, DTMFPayloadType: 96}, false, 0},
		{"tone above nyquist", Config{RTP: conn, ToneHz: 5000}, false, 0},
		{"tone NaN", Config{RTP: conn, ToneHz: math.NaN()}, false, 0},
		{"beeps", Config{RTP: conn, Beeps: 9}, false, 0},
		{"rtcp on the rtp socket", Config{RTP: conn, RTCP: conn}, false, 0},
		{"remote port 0", Config{RTP: conn, Remote: netip.AddrPortFrom(loopback, 0)}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.validate()
			if (err == nil) != tt.ok {
				t.Fatalf("validate() = %v, ok want %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
			if tt.ok && (cfg.PayloadType != tt.wantPT || cfg.ToneHz == 0 || cfg.Logger == nil) {
				t.Errorf("defaults not applied: %+v", cfg)
			}
		})
	}
}

func TestListenRTP(t *testing.T) {
	for range 10 {
		c, err := ListenRTP(loopback, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p := addrOf(c).Port(); p%2 != 0 {
			t.Errorf("port 0 gave odd port %d", p)
		}
		c.Close()
	}
	// A fixed port binds exactly that port, odd or not.
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	if _, err := ListenRTP(loopback, port); err == nil {
		t.Error("binding a port in use succeeded")
	}
	probe.Close()
	c, err := ListenRTP(loopback, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := int(addrOf(c).Port()); got != port {
		t.Errorf("fixed port %d bound %d", port, got)
	}
	if _, err := ListenRTP(loopback, 70000); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("port 70000: %v", err)
	}
}

func TestRunCloseReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	recvConn, rtcpConn := listenPair(t)
	sendConn := listen(t)
	s, err := New(Config{RTP: recvConn, RTCP: rtcpConn, SendConn: sendConn, Remote: addrOf(recvConn), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	waitFor(t, "loopback audio", func() bool { return s.Stats().Received.AudioPackets > 3 })
	if err := s.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := recvConn.WriteTo([]byte{0}, recvConn.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive socket still open: %v", err)
	}
	if _, err := sendConn.WriteTo([]byte{0}, sendConn.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("send socket still open: %v", err)
	}
	if _, err := rtcpConn.WriteTo([]byte{0}, rtcpConn.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("rtcp socket still open: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// Run can stop on its context and be started again on the same sockets
// (e.g. a UA that pauses media); the stats carry on.
func TestRunRestart(t *testing.T) {
	conn := listen(t)
	s, err := New(Config{RTP: conn, Remote: addrOf(conn), DTMFPayloadType: 101, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		want := uint64(5 * round)
		waitFor(t, "audio", func() bool { return s.Stats().Received.AudioPackets >= want })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.SendDTMF(context.Background(), "1", 0); !errors.Is(err, ErrNotRunning) {
			t.Errorf("SendDTMF after Run: %v", err)
		}
	}
	if rx := s.Stats().Received; rx.Lost != 0 || rx.SSRCChanges != 0 {
		t.Errorf("restart: lost %d ssrc changes %d", rx.Lost, rx.SSRCChanges)
	}
}

// A phone behind NAT writes an address nobody can reach; a latching peer
// answers to where the media really came from, and audio flows both ways.
func TestLatch(t *testing.T) {
	aConn, bConn, unreachable := listen(t), listen(t), listen(t)
	sdpSaid := addrOf(unreachable) // stands in for the private address in a's SDP
	a := start(t, Config{RTP: aConn, Remote: addrOf(bConn), ToneHz: 500})
	b := start(t, Config{RTP: bConn, Remote: sdpSaid, Latch: true, ToneHz: 900})
	waitFor(t, "a hears b after latching", func() bool { return a.Stats().Received.AudioPackets >= 10 })
	st := b.Stats()
	if !st.Latched || st.Remote != addrOf(aConn) {
		t.Errorf("b latched=%v remote %v, want %v", st.Latched, st.Remote, addrOf(aConn))
	}
	if hz := a.Stats().Received.ToneHz; math.Abs(hz-900) > 18 {
		t.Errorf("a hears %v Hz", hz)
	}
	// A second source does not steal the latched stream.
	tx := newRawSender(t, addrOf(bConn))
	tx.rtp(rtp.Header{SequenceNumber: 1, SSRC: 77}, make([]byte, 160))
	waitFor(t, "stray source counted", func() bool { return len(b.Stats().Received.Sources) == 2 })
	if b.Stats().Remote != addrOf(aConn) {
		t.Errorf("re-latched to %v", b.Stats().Remote)
	}
}
