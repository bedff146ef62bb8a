package uaclient

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// CallState is where a call stands, as the training page's ladders name it.
type CallState string

const (
	// StateCalling: INVITE sent, nothing but 100 Trying back yet.
	StateCalling CallState = "calling"
	// StateRinging: 180 received (outgoing) or sent (incoming).
	StateRinging CallState = "ringing"
	// StateEarly: a provisional response with SDP (early media, 183).
	StateEarly CallState = "early"
	// StateConfirmed: 2xx sent or received; the dialog is up.
	StateConfirmed CallState = "confirmed"
	// StateTerminated: over; Code/Reason say how.
	StateTerminated CallState = "terminated"
)

// Call directions.
const (
	Outgoing = "outgoing"
	Incoming = "incoming"
)

// Call is one call leg of this phone. Its fields are guarded by the
// phone's mutex; read it through Status.
type Call struct {
	p   *Phone
	log *slog.Logger

	id        string // short handle for commands: "1", "2", ...
	callID    string
	direction string
	peer      string // the other party's URI as dialled or as From
	started   time.Time
	answered  time.Time
	ended     time.Time

	state  CallState
	code   int
	reason string
	// endedBy is "local" or "remote" (who sent BYE/CANCEL/final response);
	// endReason says how, in words.
	endedBy   string
	endReason string

	dlg sipdialog.Dialog

	// UAC side.
	invite    *sip.Request // the INVITE in flight (last one after a challenge)
	ack       *sip.Request // the 2xx ACK, resent on 2xx retransmissions
	cancelReq bool         // CANCEL wanted; sent once a provisional arrived
	canceled  bool         // CANCEL sent
	provSeen  bool

	// UAS side.
	decide  chan decision // answer/reject commands for a ringing call
	ackCh   chan struct{} // closed when the ACK for our 2xx arrives
	ackSeq  uint32
	acked   bool
	offer   *sdpneg.Remote // the remote offer, for the answer
	offered bool           // we offered in our 2xx (offerless INVITE)

	// Media.
	rtp        net.PacketConn // receive socket, bound when our SDP is written
	rtpPort    int
	local      sdpneg.Description // what our last SDP said
	localSDP   netip.AddrPort
	remote     *sdpneg.Remote
	remoteSDP  netip.AddrPort
	codec      sdpneg.Codec
	dtmfPT     uint8
	sess       *media.Session
	sessCancel context.CancelFunc
	sessDone   chan struct{} // closed when sess.Run returns
	lastStats  *media.Stats
	dtmfSent   string
	mediaErr   string
	nat        callNAT // STUN mapping / TURN relay of the RTP socket (natmedia.go)

	// Hold and mid-call changes (hold.go).
	localHold     bool             // the hold command is in force
	localDir      sdpneg.Direction // the direction our last SDP wrote
	remoteOffered bool             // remote is the peer's offer, not an answer to ours
	reinviting    bool             // our re-INVITE (or UPDATE) transaction is in flight

	// INFO DTMF (info.go).
	dtmfInfoRecv string

	// Transfer (refer.go).
	transfer *TransferStatus

	// 100rel (prack.go). UAC: the last RSeq PRACKed. UAS: our reliable
	// 180's RSeq, the INVITE CSeq it answers, closed when PRACKed.
	rseqSet    bool
	rseq       uint32
	relRSeq    uint32
	relCSeq    uint32
	relPracked chan struct{}
	prack      []string
}

// maxCalls bounds the calls kept for status.
const maxCalls = 100

type decision struct {
	code   int // 200 answers
	reason string
}

// CallStatus is a call as status reports it.
type CallStatus struct {
	ID        string    `json:"id"`
	CallID    string    `json:"call_id"`
	Direction string    `json:"direction"`
	Peer      string    `json:"peer"`
	State     CallState `json:"state"`
	// Code and Reason: the final response (or 200 for an answered call,
	// then what ended it).
	Code      int       `json:"code,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	Started   time.Time `json:"started"`
	Answered  time.Time `json:"answered,omitzero"`
	Ended     time.Time `json:"ended,omitzero"`
	// RemoteTarget and RouteSet are the dialog's view of where in-dialog
	// requests go (Contact and Record-Route), the ghost-call clue.
	RemoteTarget string   `json:"remote_target,omitempty"`
	RouteSet     []string `json:"route_set,omitempty"`
	// LocalSDP / RemoteSDP are the c=/m= addresses each side wrote.
	LocalSDP  string `json:"local_sdp,omitempty"`
	RemoteSDP string `json:"remote_sdp,omitempty"`
	Codec     string `json:"codec,omitempty"`
	DTMFPT    uint8  `json:"dtmf_pt,omitempty"`
	// Media statistics: live during the call, frozen at its end.
	Media        *media.Stats `json:"media,omitempty"`
	DTMFReceived string       `json:"dtmf_received,omitempty"`
	DTMFSent     string       `json:"dtmf_sent,omitempty"`
	// ToneHz is the dominant frequency received: whose tone we hear.
	ToneHz     float64 `json:"tone_hz,omitempty"`
	MediaError string  `json:"media_error,omitempty"`
	// NAT is what STUN (sdp_addr=stun) or TURN (media_relay=turn) did
	// for this call's media.
	NAT *CallNATStatus `json:"nat,omitempty"`
	// Hold is "" (not on hold), "local" (we hold the peer), "remote"
	// (held by remote: their SDP says sendonly/inactive or c=0.0.0.0) or
	// "both". LocalDirection / RemoteDirection are the a= attributes of
	// the last SDP each side wrote.
	Hold            string `json:"hold,omitempty"`
	LocalDirection  string `json:"local_direction,omitempty"`
	RemoteDirection string `json:"remote_direction,omitempty"`
	// DTMFInfoReceived are digits that came as SIP INFO
	// (application/dtmf-relay or application/dtmf), not in RTP.
	DTMFInfoReceived string `json:"dtmf_info_received,omitempty"`
	// Transfer is set on a call that was transferred or asked to transfer.
	Transfer *TransferStatus `json:"transfer,omitempty"`
	// Prack tells the reliable provisional responses (RFC 3262) of the
	// call: sent or received, RSeq, and their PRACK.
	Prack []string `json:"prack,omitempty"`
}

func (p *Phone) newCall(direction, callID, peer string) *Call {
	p.nextID++
	c := &Call{
		p:         p,
		id:        strconv.Itoa(p.nextID),
		callID:    callID,
		direction: direction,
		peer:      peer,
		started:   time.Now(),
		decide:    make(chan decision, 1),
	}
	c.log = p.log.With("call_id", callID, "call", c.id, "dir", direction)
	p.calls = append(p.calls, c)
	// A daemon runs for a whole class: keep the last maxCalls, dropping
	// the oldest finished ones first.
	for len(p.calls) > maxCalls {
		i := slices.IndexFunc(p.calls, func(c *Call) bool { return c.state == StateTerminated })
		if i < 0 {
			break
		}
		p.calls = slices.Delete(p.calls, i, i+1)
	}
	p.notifyLocked()
	return c
}

// statusLocked snapshots the call; p.mu held.
func (c *Call) statusLocked() CallStatus {
	st := CallStatus{
		ID: c.id, CallID: c.callID, Direction: c.direction, Peer: c.peer,
		State: c.state, Code: c.code, Reason: c.reason, EndedBy: c.endedBy, EndReason: c.endReason,
		Started: c.started, Answered: c.answered, Ended: c.ended,
		DTMFSent: c.dtmfSent, MediaError: c.mediaErr,
	}
	if targetKnown(&c.dlg) {
		st.RemoteTarget = c.dlg.RemoteTarget.String()
	}
	for _, r := range c.dlg.RouteSet {
		st.RouteSet = append(st.RouteSet, r.String())
	}
	if c.localSDP.IsValid() {
		st.LocalSDP = c.localSDP.String()
	}
	if c.remoteSDP.IsValid() {
		st.RemoteSDP = c.remoteSDP.String()
	}
	if c.codec.Name != "" {
		st.Codec = c.codec.String()
		st.DTMFPT = c.dtmfPT
	}
	if c.localSDP.IsValid() {
		st.LocalDirection = c.localDir.String()
	}
	if c.remote != nil {
		st.RemoteDirection = c.remote.Direction.String()
		if c.remote.Addr.IsUnspecified() {
			st.RemoteDirection += " (c=0.0.0.0)"
		}
	}
	if c.state == StateConfirmed {
		st.Hold = c.holdLocked()
	}
	st.DTMFInfoReceived = c.dtmfInfoRecv
	st.NAT = c.nat.statusLocked()
	st.Prack = append([]string(nil), c.prack...)
	if c.transfer != nil {
		t := *c.transfer
		t.Progress = append([]string(nil), t.Progress...)
		st.Transfer = &t
	}
	var ms *media.Stats
	if c.sess != nil {
		s := c.sess.Stats()
		ms = &s
	} else if c.lastStats != nil {
		s := *c.lastStats
		ms = &s
	}
	if ms != nil {
		st.Media = ms
		st.DTMFReceived = ms.Received.DTMF
		st.ToneHz = ms.Received.ToneHz
	}
	return st
}

// setState moves the call on and wakes waiters; p.mu held.
func (c *Call) setStateLocked(s CallState, code int, reason string) {
	if c.state == StateTerminated {
		return
	}
	prev := c.state
	c.state = s
	if code != 0 {
		c.code, c.reason = code, reason
	}
	if prev != s {
		c.log.Info("call state", "state", s, "code", c.code, "reason", c.reason, "end", c.endReason)
	}
	switch s {
	case StateConfirmed:
		if c.answered.IsZero() {
			c.answered = time.Now()
		}
	case StateTerminated:
		c.ended = time.Now()
	}
	c.p.notifyLocked()
}

// terminate ends the call and its media. code/reason is the INVITE's
// final response when it had none yet (0 keeps what there is); why says
// what ended the call, in words for status.
func (c *Call) terminate(code int, reason, by, why string) {
	c.p.mu.Lock()
	if c.state == StateTerminated {
		c.p.mu.Unlock()
		return
	}
	if c.state == StateConfirmed {
		// An answered call keeps its 200 as the final response.
		code = 0
	}
	c.endedBy, c.endReason = by, strings.TrimPrefix(why, "uaclient: ")
	c.setStateLocked(StateTerminated, code, reason)
	c.p.mu.Unlock()
	c.closeMedia()
}

func (c *Call) isTerminated() bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.state == StateTerminated
}

// --- media -------------------------------------------------------------

// bindRTP binds the receive socket once per call, so the port in every SDP
// of the call is the same. A fixed RTPPort is tried first, then the next
// even ports, so several calls can run on one phone.
func (c *Call) bindRTP() error {
	p := c.p
	p.mu.Lock()
	if c.rtp != nil {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	ip := p.local.Addr()
	var conn net.PacketConn
	var err error
	if p.cfg.RTPPort == 0 {
		conn, err = media.ListenRTP(ip, 0)
	} else {
		for port := p.cfg.RTPPort; port <= 65534; port += 2 {
			p.mu.Lock()
			used := p.rtpUsed[port]
			p.mu.Unlock()
			if used {
				continue
			}
			conn, err = media.ListenRTP(ip, port)
			if err == nil || port-p.cfg.RTPPort > 200 {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("uaclient: bind rtp: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	p.mu.Lock()
	c.rtp, c.rtpPort = conn, port
	p.rtpUsed[port] = true
	p.mu.Unlock()
	c.prepareMediaPath()
	return nil
}

// localDescription is what our SDP says now: sdp_addr (the lie) or the
// local address, the bound RTP port unless sdp_addr carries one.
// dir is the direction to write: what we want (hold.go), or for an answer
// what the offer allows of it.
func (c *Call) localDescriptionLocked(s liveSettings, dir sdpneg.Direction) sdpneg.Description {
	p := c.p
	local := netip.AddrPortFrom(p.local.Addr(), uint16(c.rtpPort))
	adv := c.natAdvertisedLocked(s, resolveAddr(s.SDPAddr, s.SDPIP, local))
	d := c.local
	if d.SessionID == 0 {
		d.SessionID = sdpneg.NewSessionID()
		d.SessionVersion = 1
	} else if d.Addr != adv.Addr() || d.Port != int(adv.Port()) || d.Direction != dir {
		// RFC 3264 §8: a changed description gets a new version, an
		// unchanged one keeps it.
		d.SessionVersion++
	}
	d.Addr = adv.Addr()
	d.Port = int(adv.Port())
	d.Codecs = s.Codecs
	d.DTMFPayloadType = 0
	if !p.cfg.NoDTMF {
		d.DTMFPayloadType = sdpneg.TelephoneEvent.PayloadType
	}
	d.Username = p.cfg.User
	d.Direction = dir
	c.local = d
	c.localSDP = adv
	c.localDir = dir
	return d
}

// startMedia creates and runs the RTP session once codec and remote are
// known; a later call (re-INVITE, 2xx after early media) updates the remote.
func (c *Call) startMedia() {
	p := c.p
	p.mu.Lock()
	if c.state == StateTerminated || c.rtp == nil || c.remote == nil || c.codec.Name == "" {
		p.mu.Unlock()
		return
	}
	remote := c.remote
	dst := remote.AddrPort()
	if remote.Port == 0 || !dst.Addr().IsValid() || dst.Addr().IsUnspecified() {
		dst = netip.AddrPort{}
	}
	relay := c.nat.relay
	if c.sess != nil {
		sess := c.sess
		p.mu.Unlock()
		c.permitPeer(relay, dst)
		if sess.Remote() != dst {
			if err := sess.SetRemote(dst); err != nil {
				c.log.Warn("media remote update failed", "err", err)
			}
		}
		p.mu.Lock()
		send, recv := c.mediaDirectionLocked(dst)
		p.mu.Unlock()
		sess.SetDirection(send, recv)
		return
	}
	s := p.settings
	codec, dtmf, conn := c.codec, c.dtmfPT, c.rtp
	send, recv := c.mediaDirectionLocked(dst)
	p.mu.Unlock()
	if relay != nil {
		// All media goes through the TURN relay (natmedia.go).
		conn = relay.PacketConn()
		c.permitPeer(relay, dst)
	}

	cfg := media.Config{
		RTP:             conn,
		Remote:          dst,
		Codec:           codec.Name,
		PayloadType:     codec.PayloadType,
		DTMFPayloadType: dtmf,
		ToneHz:          p.cfg.ToneHz,
		SendDisabled:    !send,
		RecvDisabled:    !recv,
		Logger:          c.log,
	}
	if !s.SymmetricRTP && relay == nil {
		// The asymmetric phone: RTP leaves from another port than the one
		// in our SDP, so a latching peer answers to the wrong port. (Not
		// with a TURN relay: its one allocation sends and receives.)
		sc, err := net.ListenPacket("udp", net.JoinHostPort(p.local.Addr().String(), "0"))
		if err != nil {
			c.setMediaErr(fmt.Errorf("bind rtp send socket: %w", err))
			return
		}
		cfg.SendConn = sc
	}
	sess, err := media.New(cfg)
	if err != nil {
		if cfg.SendConn != nil {
			cfg.SendConn.Close()
		}
		c.setMediaErr(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	// A closed phone has already stopped its calls' media (Close ran
	// closeMedia before this session existed): starting one now would
	// outlive the phone.
	if c.state == StateTerminated || c.sess != nil || p.closed {
		p.mu.Unlock()
		cancel()
		// The RTP socket stays owned by the call; only drop the extra one.
		if cfg.SendConn != nil {
			cfg.SendConn.Close()
		}
		return
	}
	done := make(chan struct{})
	c.sess, c.sessCancel, c.sessDone = sess, cancel, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		if err := sess.Run(ctx); err != nil {
			c.setMediaErr(err)
		}
	}()
	// Return with the session running: the call is announced as up right
	// after this, and a DTMF command may follow at once.
	select {
	case <-sess.Started():
	case <-done:
	}
}

func (c *Call) setMediaErr(err error) {
	c.log.Warn("media error", "err", err)
	c.p.mu.Lock()
	c.mediaErr = err.Error()
	c.p.notifyLocked()
	c.p.mu.Unlock()
}

// closeMedia stops RTP and keeps the final statistics for status.
func (c *Call) closeMedia() {
	p := c.p
	p.mu.Lock()
	sess, cancel, conn, done := c.sess, c.sessCancel, c.rtp, c.sessDone
	relay := c.nat.relay
	c.nat.relay = nil
	if sess != nil {
		// Snapshot under the same lock that drops the session, so no
		// status ever sees a call with neither live nor final stats.
		st := sess.Stats()
		c.lastStats = &st
	}
	c.sess, c.sessCancel, c.rtp = nil, nil, nil
	if c.rtpPort != 0 {
		delete(p.rtpUsed, c.rtpPort)
	}
	p.mu.Unlock()
	if sess != nil {
		cancel()
		// Wait for Run to return so no media goroutine outlives the call
		// (or the phone, after Close).
		<-done
		// Packets counted between the snapshot and the stop belong in the
		// final numbers too.
		st := sess.Stats()
		sess.Close() // closes conn too: the session owns it
		if relay != nil {
			relay.Close() // deallocates; the session closed only its view of it
		}
		p.mu.Lock()
		c.lastStats = &st
		p.notifyLocked()
		p.mu.Unlock()
		return
	}
	if relay != nil {
		relay.Close() // closes conn, the relay's base socket, too
	}
	if conn != nil {
		conn.Close()
	}
}

// setRemoteSDP records the peer's SDP (offer or answer) for status and media.
func (c *Call) setRemoteSDPLocked(r *sdpneg.Remote, isOffer bool) {
	c.remote = r
	c.remoteOffered = isOffer
	c.remoteSDP = r.AddrPort()
}

// --- the call handle ---------------------------------------------------

// ID is the call's short handle ("1", "2", ...) used by commands.
func (c *Call) ID() string { return c.id }

// CallID is the SIP Call-ID.
func (c *Call) CallID() string { return c.callID }

// Status snapshots the call.
func (c *Call) Status() CallStatus { return c.status() }

// Wait blocks until the call is in one of states (see Phone.WaitCall).
func (c *Call) Wait(ctx context.Context, states ...CallState) (CallStatus, error) {
	return c.p.WaitCall(ctx, c.id, states...)
}

// Answer, Reject, Cancel, Hangup and SendDTMF act on this call; see the
// Phone methods of the same names.
func (c *Call) Answer() error                    { return c.p.Answer(c.id) }
func (c *Call) Reject(code int) error            { return c.p.Reject(c.id, code) }
func (c *Call) Cancel(ctx context.Context) error { return c.p.Cancel(ctx, c.id) }
func (c *Call) Hangup(ctx context.Context) error { return c.p.Hangup(ctx, c.id) }
func (c *Call) SendDTMF(ctx context.Context, digits string) error {
	return c.p.SendDTMF(ctx, c.id, digits)
}

// FindCall returns the call ref names: its short id, its Call-ID, or ""
// for the newest call.
func (p *Phone) FindCall(ref string) (*Call, error) { return p.findCall(ref, nil) }

// --- commands ----------------------------------------------------------

// findCall resolves a command's call reference: the short id, the Call-ID,
// or "" for the newest call that fits.
func (p *Phone) findCall(ref string, fits func(*Call) bool) (*Call, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref = strings.TrimSpace(ref)
	for i := len(p.calls) - 1; i >= 0; i-- {
		c := p.calls[i]
		if ref == "" {
			if fits == nil || fits(c) {
				return c, nil
			}
			continue
		}
		if c.id == ref || c.callID == ref {
			return c, nil
		}
	}
	if ref == "" {
		return nil, fmt.Errorf("%w: no call in a state that fits", ErrNoSuchCall)
	}
	return nil, fmt.Errorf("%w %q", ErrNoSuchCall, ref)
}

// findCallIn is findCall for a verb that needs a call fits accepts: a
// call ref names in another state is an ErrCallState error, which why
// explains ("" for none).
func (p *Phone) findCallIn(ref string, fits func(*Call) bool, why string) (*Call, error) {
	c, err := p.findCall(ref, fits)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	ok, st := fits(c), c.state
	p.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: call %s is %s %s%s", ErrCallState, c.id, c.direction, st, why)
	}
	return c, nil
}

func (p *Phone) callByCallID(callID string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		if p.calls[i].callID == callID {
			return p.calls[i]
		}
	}
	return nil
}

// Answer answers a ringing incoming call ("" = the newest one).
func (p *Phone) Answer(ref string) error {
	return p.decideCall(ref, decision{code: 200, reason: "OK"})
}

// Reject answers a ringing incoming call with a failure code (0 = 486).
func (p *Phone) Reject(ref string, code int) error {
	if code == 0 {
		code = sip.StatusBusyHere
	}
	if code < 300 || code > 699 {
		return fmt.Errorf("%w: reject code %d is not a failure code (300-699)", ErrBadValue, code)
	}
	return p.decideCall(ref, decision{code: code, reason: reasonPhrase(code)})
}

func (p *Phone) decideCall(ref string, d decision) error {
	ringingIn := func(c *Call) bool {
		return c.direction == Incoming && (c.state == StateRinging || c.state == StateEarly)
	}
	c, err := p.findCallIn(ref, ringingIn, "")
	if err != nil {
		return err
	}
	select {
	case c.decide <- d:
		return nil
	default:
		return fmt.Errorf("%w: call %s already has an answer pending", ErrCallState, c.id)
	}
}

// Hangup ends a call whatever its state: BYE when confirmed, CANCEL when
// our INVITE is pending, 480/603-style rejection when it is ringing here.
func (p *Phone) Hangup(ctx context.Context, ref string) error {
	c, err := p.findCall(ref, func(c *Call) bool { return c.state != StateTerminated })
	if err != nil {
		return err
	}
	return c.end(ctx)
}

// Cancel cancels our pending outgoing INVITE (CANCEL, expect 487).
func (p *Phone) Cancel(ctx context.Context, ref string) error {
	pending := func(c *Call) bool {
		return c.direction == Outgoing && c.state != StateConfirmed && c.state != StateTerminated
	}
	c, err := p.findCallIn(ref, pending, "; cancel is for outgoing calls not yet answered")
	if err != nil {
		return err
	}
	return c.cancel(ctx)
}

func (c *Call) end(ctx context.Context) error {
	c.p.mu.Lock()
	st, dir := c.state, c.direction
	c.p.mu.Unlock()
	switch {
	case st == StateTerminated:
		return fmt.Errorf("%w: call %s already terminated", ErrCallState, c.id)
	case st == StateConfirmed:
		return c.bye(ctx)
	case dir == Outgoing:
		return c.cancel(ctx)
	default:
		// Ringing here: hanging up a ringing phone declines it.
		select {
		case c.decide <- decision{code: sip.StatusGlobalDecline, reason: "Decline"}:
		default:
		}
		return nil
	}
}

// SendDTMF sends digits on a confirmed call: RFC 4733 events in RTP, or
// with dtmf_mode info one SIP INFO per digit.
func (p *Phone) SendDTMF(ctx context.Context, ref, digits string) error {
	digits = strings.ToUpper(strings.TrimSpace(digits))
	if digits == "" {
		return fmt.Errorf("%w: none given", ErrBadDigits)
	}
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCD", r) {
			return fmt.Errorf("%w: %q (want 0-9 * # A-D)", ErrBadDigits, r)
		}
	}
	c, err := p.findCall(ref, func(c *Call) bool { return c.state == StateConfirmed })
	if err != nil {
		return err
	}
	p.mu.Lock()
	sess, pt, mode := c.sess, c.dtmfPT, p.settings.DTMFMode
	p.mu.Unlock()
	switch {
	case mode == DTMFInfo:
		if err := c.sendDTMFInfo(ctx, digits); err != nil {
			return fmt.Errorf("uaclient: dtmf by INFO: %w", err)
		}
	case sess == nil:
		return fmt.Errorf("%w: call %s", ErrNoMedia, c.id)
	case pt == 0:
		return fmt.Errorf("%w: call %s", ErrNoDTMF, c.id)
	default:
		if err := sess.SendDTMF(ctx, digits, 0); err != nil {
			return fmt.Errorf("uaclient: send dtmf: %w", err)
		}
	}
	// Sent either way (INFO or RTP): status shows the digits.
	p.mu.Lock()
	c.dtmfSent += digits
	p.notifyLocked()
	p.mu.Unlock()
	return nil
}

// reasonPhrase is the RFC 3261 phrase for the codes a phone sends.
func reasonPhrase(code int) string {
	switch code {
	case 200:
		return "OK"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	case 604:
		return "Does Not Exist Anywhere"
	case 606:
		return "Not Acceptable"
	}
	switch code / 100 {
	case 3:
		return "Redirect"
	case 4:
		return "Client Error"
	case 5:
		return "Server Error"
	}
	return "Global Failure"
}
