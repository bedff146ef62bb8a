package b2bua

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sdpneg"
)

func trimAngle(s string) string { return strings.Trim(strings.TrimSpace(s), "<>") }

// mailbox is one user's voicemail state.
type mailbox struct {
	messages []Message
	// lastNotify is the outcome of the last message-summary NOTIFY.
	lastNotify string
}

// Message is one recorded voicemail.
type Message struct {
	From     string        `json:"from"`
	File     string        `json:"file"`
	Received time.Time     `json:"received"`
	Duration time.Duration `json:"duration"`
	Packets  uint64        `json:"packets"`
}

// voicemail answers the caller itself and records its RTP for box.
func (c *Call) voicemail(req *sip.Request, tx sip.ServerTransaction, offer *sdpneg.Remote, box string) {
	b := c.b
	if b.cfg.VoicemailDir == "" {
		c.finalSent()
		b.send(tx, c.aResponse(req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil))
		c.end("pbx", "voicemail disabled (no -voicemail-dir)")
		return
	}
	select {
	case <-c.cancelled:
		c.end("caller", "CANCEL from caller")
		return
	default:
	}
	// A forward after an anchored attempt leaves a relay behind; the
	// caller now talks to the recorder instead.
	b.mu.Lock()
	r := c.relay
	c.relay = nil
	b.mu.Unlock()
	if r != nil {
		r.close()
	}
	conn, err := media.ListenRTP(b.mediaIP, 0)
	if err != nil {
		b.send(tx, c.aResponse(req, sip.StatusServiceUnavailable, "Service Unavailable", nil))
		c.end("pbx", err.Error())
		return
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	b.mu.Lock()
	a := c.legs[legA]
	desc := sdpneg.Description{Addr: b.mediaIP, Port: port, Codecs: []sdpneg.Codec{sdpneg.PCMU, sdpneg.PCMA},
		Direction: sdpneg.RecvOnly, SessionID: a.origin.id, SessionVersion: a.origin.version + 1, Username: "siplab-pbx"}
	a.origin.version++
	b.mu.Unlock()
	body, codec, _, err := sdpneg.Answer(offer, desc)
	if err != nil {
		conn.Close()
		b.send(tx, c.aResponse(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		c.end("pbx", "voicemail: "+err.Error())
		return
	}
	dir := filepath.Join(b.cfg.VoicemailDir, box)
	name := fmt.Sprintf("%s-%s.wav", time.Now().UTC().Format("20060102T150405.000"), c.id)
	rec, err := newRecording(conn.(*net.UDPConn), filepath.Join(dir, name), codec, b.cfg.MaxMessage)
	if err != nil {
		conn.Close()
		b.send(tx, c.aResponse(req, sip.StatusServiceUnavailable, "Service Unavailable", nil))
		c.end("pbx", "voicemail: "+err.Error())
		return
	}
	rec.onDone = func(m Message) { b.deliver(box, c.caller, m) }
	b.mu.Lock()
	c.rec = rec
	c.state = StateVoicemail
	c.times.Answered = time.Now()
	a.localBody = body
	a.State = b2bleg.Confirmed
	b.counters.Voicemail++
	b.mu.Unlock()
	c.event("voicemail for %s: recording %s", box, rec.path)
	go rec.run()
	go func() {
		// A message has a maximum length: then the PBX hangs up.
		select {
		case <-rec.done:
			if a.Load() == b2bleg.Confirmed {
				a.Bye(context.Background(), "maximum message length")
				c.end("pbx", "maximum message length")
			}
		case <-b.done:
		}
	}()
	c.finalSent()
	if !c.sendAndAwaitAck(a, tx, req, c.aResponse(req, sip.StatusOK, "OK", body), c.cancelled) {
		c.hangupAll(context.Background(), "no ACK from caller")
	}
}

// recording writes the caller's audio as 16-bit PCM WAV, 8 kHz mono.
type recording struct {
	conn    *net.UDPConn
	path    string
	f       *os.File
	pt      uint8
	decode  func(uint8) int16
	max     time.Duration
	done    chan struct{} // closed when run returns
	onDone  func(Message)
	started time.Time

	mu       sync.Mutex
	samples  uint32
	packets  uint64
	source   netip.AddrPort
	finished bool
}

func newRecording(conn *net.UDPConn, path string, codec sdpneg.Codec, max time.Duration) (*recording, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("b2bua: voicemail dir: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("b2bua: voicemail file: %w", err)
	}
	r := &recording{conn: conn, path: path, f: f, pt: codec.PayloadType, max: max, done: make(chan struct{}), started: time.Now()}
	r.decode = g711.DecodeUlawFrame
	if codec.Same(sdpneg.PCMA) {
		r.decode = g711.DecodeAlawFrame
	}
	// The header's sizes are written again when the recording ends.
	if _, err := f.Write(wavHeader(0)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("b2bua: voicemail file: %w", err)
	}
	return r, nil
}

// wavHeader is the 44-byte RIFF header for n samples of 16-bit 8 kHz mono.
func wavHeader(n uint32) []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+2*n)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 16000)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], 2*n)
	return h
}

func (r *recording) run() {
	defer close(r.done)
	buf := make([]byte, 1500)
	out := make([]byte, 0, 2*1500)
	var p rtp.Packet
	_ = r.conn.SetReadDeadline(r.started.Add(r.max))
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return
			}
			continue
		}
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != r.pt {
			continue // DTMF events and junk are not audio
		}
		out = out[:0]
		for _, s := range p.Payload {
			out = binary.LittleEndian.AppendUint16(out, uint16(r.decode(s)))
		}
		r.mu.Lock()
		if r.finished {
			r.mu.Unlock()
			return
		}
		if _, err := r.f.Write(out); err == nil {
			r.samples += uint32(len(p.Payload))
			r.packets++
			r.source = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
		r.mu.Unlock()
	}
}

// finish stops recording, fixes the WAV header and files the message.
func (r *recording) finish() {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	r.mu.Unlock()
	r.conn.Close()
	<-r.done
	r.mu.Lock()
	n, pkts := r.samples, r.packets
	r.mu.Unlock()
	_, err := r.f.WriteAt(wavHeader(n), 0)
	err = errors.Join(err, r.f.Sync(), r.f.Close())
	m := Message{File: r.path, Received: r.started, Duration: time.Duration(n) * time.Second / 8000, Packets: pkts}
	if err != nil || pkts == 0 {
		// An empty or broken message is not worth a lamp.
		os.Remove(r.path)
		return
	}
	if r.onDone != nil {
		r.onDone(m)
	}
}

func (r *recording) status() RecordingStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RecordingStatus{File: r.path, Packets: r.packets, Seconds: float64(r.samples) / 8000, Source: r.source}
}

// RecordingStatus is a voicemail recording in progress.
type RecordingStatus struct {
	File    string         `json:"file"`
	Packets uint64         `json:"packets"`
	Seconds float64        `json:"seconds"`
	Source  netip.AddrPort `json:"source,omitzero"`
}

// deliver files a message and lights the owner's lamp.
func (b *B2BUA) deliver(box, from string, m Message) {
	m.From = from
	b.mu.Lock()
	mb := b.mailboxes[box]
	if mb == nil {
		mb = &mailbox{}
		b.mailboxes[box] = mb
	}
	mb.messages = append(mb.messages, m)
	count := len(mb.messages)
	b.mu.Unlock()
	b.log.Info("voicemail stored", "mailbox", box, "from", from, "file", m.File, "seconds", m.Duration.Seconds())
	if !b.mailboxChanged(box) {
		// Nobody subscribed (mwi.go): the unsolicited NOTIFY many phones
		// configured with a mailbox still expect.
		go b.notifyMWI(box, count)
	}
}

// messageSummary is the RFC 3842 body: new/old voice messages.
func messageSummary(account string, newMsgs, oldMsgs int) string {
	waiting := "no"
	if newMsgs > 0 {
		waiting = "yes"
	}
	return fmt.Sprintf("Messages-Waiting: %s\r\nMessage-Account: %s\r\nVoice-Message: %d/%d (0/0)\r\n", waiting, account, newMsgs, oldMsgs)
}

// notifyMWI sends the mailbox owner's phone an unsolicited message-summary
// NOTIFY (what most PBXes do for phones configured with a mailbox), when
// no phone subscribed to the mailbox.
func (b *B2BUA) notifyMWI(box string, count int) {
	req, err := b.outOfDialog(sip.NOTIFY, box, "voicemail")
	result := ""
	if err != nil {
		result = "not sent: " + err.Error()
	} else {
		req.AppendHeader(sip.NewHeader("Event", "message-summary"))
		req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/simple-message-summary"))
		a := b.ep.Addr()
		req.SetBody([]byte(messageSummary(fmt.Sprintf("sip:%s@%s", box, a.Addr()), count, 0)))
		ctx, cancel := b.lifetime(32 * time.Second)
		res, err := b.do(ctx, req)
		cancel()
		if err != nil {
			result = "no answer: " + err.Error()
		} else {
			result = fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
		}
	}
	b.log.Info("message-waiting NOTIFY", "mailbox", box, "messages", count, "result", result)
	b.mu.Lock()
	if mb := b.mailboxes[box]; mb != nil {
		mb.lastNotify = result
	}
	b.mu.Unlock()
}
