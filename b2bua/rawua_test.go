package b2bua

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

// rawUA is a scripted SIP user agent on a plain UDP socket, like sipp: it
// writes each message by hand and reads every byte that comes back, so a
// test can see exactly what the PBX put on the wire (headers the lab's
// phones do not surface) and send what a phone would (a hold re-INVITE).
type rawUA struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
	user string

	// Dialog as caller.
	callID, fromTag, toTag string
	cseq                   int
	ruri                   string
	target                 netip.AddrPort // where requests go (the PBX)
	sdpID, sdpVer          uint64

	sess    *media.Session
	rtpPort int
	// inviteHeaders are extra header lines ("Require: 100rel\r\n") for
	// every INVITE this UA sends.
	inviteHeaders string
}

// newRawUA is a rawUA for user on ip (any port).
func newRawUA(t *testing.T, ip, user string) *rawUA {
	t.Helper()
	return rawUAAt(t, netip.AddrPortFrom(netip.MustParseAddr(ip), 0), user)
}

// rawUAAt is a rawUA bound to exactly bind.
func rawUAAt(t *testing.T, bind netip.AddrPort, user string) *rawUA {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(bind))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return &rawUA{t: t, conn: c, addr: ap, user: user, sdpID: sdpneg.NewSessionID()}
}

// newTrunkLab starts a lab whose dial plan sends numbers starting with +
// to a raw trunk (user on it, sending the test tone) and has the extra
// line didLine ("+15550100 100": a DID to an extension) when not empty.
func newTrunkLab(t *testing.T, user, didLine string, phones ...string) (*lab, *rawUA) {
	t.Helper()
	trunk := newRawUA(t, "127.0.9.95", user)
	trunk.startMedia(callerTone)
	plan := testDialPlan
	if didLine != "" {
		plan += didLine + "\n"
	}
	plan += "prefix + trunk:" + trunk.addr.String() + "\n"
	return newLab(t, labOpts{dialPlan: plan}, phones...), trunk
}

// rawPhone takes name's place: its phone goes away and a rawUA binds
// the address it registered from, so a test reads and writes that leg
// verbatim.
func (l *lab) rawPhone(t *testing.T, name string) *rawUA {
	t.Helper()
	addr := l.phone(name).Addr()
	l.phone(name).Close()
	return rawUAAt(t, addr, name)
}

// contact is the Contact header line for this UA's address.
func (u *rawUA) contact() string {
	return "Contact: <sip:" + u.user + "@" + u.addr.String() + ">"
}

func (u *rawUA) send(to netip.AddrPort, msg string) {
	u.t.Helper()
	if _, err := u.conn.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next SIP message and where it came from.
func (u *rawUA) read(d time.Duration) (sip.Message, netip.AddrPort) {
	u.t.Helper()
	buf := make([]byte, 65535)
	_ = u.conn.SetReadDeadline(time.Now().Add(d))
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			u.t.Fatalf("%s: no SIP message within %v: %v", u.user, d, err)
		}
		if strings.TrimSpace(string(buf[:n])) == "" {
			continue // keep-alive
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			u.t.Fatalf("%s: unparsable message: %v\n%s", u.user, err, buf[:n])
		}
		return m, from
	}
}

// quietFor collects what arrives within d without failing when nothing
// does: for tests that prove something is NOT sent (yet).
func (u *rawUA) quietFor(d time.Duration) []sip.Message {
	u.t.Helper()
	var out []sip.Message
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		_ = u.conn.SetReadDeadline(deadline)
		n, _, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return out
		}
		if m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...)); err == nil {
			out = append(out, m)
		}
	}
}

// response waits for a response to method with a code >= min, skipping
// everything else (retransmissions, provisionals below min).
func (u *rawUA) response(method sip.RequestMethod, min int, d time.Duration) *sip.Response {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, _ := u.read(time.Until(deadline))
		res, ok := m.(*sip.Response)
		if !ok || res.CSeq().MethodName != method || res.StatusCode < min {
			continue
		}
		return res
	}
}

// request waits for a request of method.
func (u *rawUA) request(method sip.RequestMethod, d time.Duration) (*sip.Request, netip.AddrPort) {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, from := u.read(time.Until(deadline))
		if req, ok := m.(*sip.Request); ok && req.Method == method {
			return req, from
		}
	}
}

// respond answers req (sent from src) with code; the To tag is ours.
func (u *rawUA) respond(req *sip.Request, src netip.AddrPort, code int, reason, tag string, extra ...string) {
	u.t.Helper()
	u.respondBody(req, src, code, reason, tag, nil, extra...)
}

// respondBody is respond with an SDP body.
func (u *rawUA) respondBody(req *sip.Request, src netip.AddrPort, code int, reason, tag string, body []byte, extra ...string) {
	u.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if tag != "" {
		res.To().Params.Add("tag", tag)
	}
	for _, h := range extra {
		name, val, _ := strings.Cut(h, ": ")
		res.AppendHeader(sip.NewHeader(name, val))
	}
	u.send(src, res.String())
}

// startMedia binds RTP and runs a session sending toneHz to nowhere yet.
func (u *rawUA) startMedia(toneHz float64) {
	u.t.Helper()
	pc, err := media.ListenRTP(u.addr.Addr(), 0)
	if err != nil {
		u.t.Fatal(err)
	}
	u.rtpPort = pc.LocalAddr().(*net.UDPAddr).Port
	s, err := media.New(media.Config{RTP: pc, ToneHz: toneHz, DTMFPayloadType: 101})
	if err != nil {
		u.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	u.t.Cleanup(func() { cancel(); <-done; s.Close() })
	u.sess = s
}

func (u *rawUA) sdp(dir sdpneg.Direction) string {
	u.t.Helper()
	u.sdpVer++
	b, err := sdpneg.Build(sdpneg.Description{Addr: u.addr.Addr(), Port: u.rtpPort, Codecs: []sdpneg.Codec{sdpneg.PCMU},
		DTMFPayloadType: 101, Direction: dir, SessionID: u.sdpID, SessionVersion: u.sdpVer})
	if err != nil {
		u.t.Fatal(err)
	}
	return string(b)
}

func (u *rawUA) via() string {
	return fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK%s;rport", u.addr, sip.GenerateTagN(12))
}

// invite sends an INVITE (initial when toTag is empty, else a re-INVITE).
func (u *rawUA) invite(dir sdpneg.Direction) {
	u.cseq++
	body := u.sdp(dir)
	to := fmt.Sprintf("<%s>", u.ruri)
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	u.send(u.target, fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n"+
		"Call-ID: %s\r\nCSeq: %d INVITE\r\nContact: <sip:%s@%s>\r\n%sContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		u.ruri, u.via(), u.user, domain, u.fromTag, to, u.callID, u.cseq, u.user, u.addr, u.inviteHeaders, len(body), body))
}

// inDialog sends ACK (for cseq) or another request in the caller dialog.
func (u *rawUA) inDialog(method string, cseq int, extra string) {
	if cseq == 0 {
		u.cseq++
		cseq = u.cseq
	}
	u.send(u.target, fmt.Sprintf("%s %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>;tag=%s\r\n"+
		"Call-ID: %s\r\nCSeq: %d %s\r\n%sContent-Length: 0\r\n\r\n",
		method, u.ruri, u.via(), u.user, domain, u.fromTag, u.ruri, u.toTag, u.callID, cseq, method, extra))
}

// dial sends an initial INVITE for ext to the PBX as Call-ID callID and
// returns without waiting for an answer.
func (u *rawUA) dial(pbx netip.AddrPort, ext, callID string) {
	u.target = pbx
	u.ruri = fmt.Sprintf("sip:%s@%s", ext, pbx)
	u.callID, u.fromTag = callID, sip.GenerateTagN(8)
	u.invite(sdpneg.SendRecv)
}

// call dials ext at the PBX and returns its 2xx (ACKed, media running).
func (u *rawUA) call(pbx netip.AddrPort, ext string) *sip.Response {
	u.t.Helper()
	u.dial(pbx, ext, sip.GenerateTagN(16)+"@"+u.addr.Addr().String())
	res := u.response(sip.INVITE, 200, 10*time.Second)
	if res.StatusCode != 200 {
		u.t.Fatalf("INVITE %s: %d %s", ext, res.StatusCode, res.Reason)
	}
	u.toTag, _ = res.To().Params.Get("tag")
	u.inDialog("ACK", u.cseq, "")
	u.applyAnswer(res)
	return res
}

// applyAnswer points the media at the answer's address and direction.
func (u *rawUA) applyAnswer(res *sip.Response) *sdpneg.Remote {
	u.t.Helper()
	r, err := sdpneg.Parse(res.Body())
	if err != nil {
		u.t.Fatalf("answer SDP: %v\n%s", err, res.Body())
	}
	if err := u.sess.SetRemote(r.AddrPort()); err != nil {
		u.t.Fatal(err)
	}
	return r
}

// reinvite re-offers with dir and ACKs the 200; it returns the answer.
func (u *rawUA) reinvite(dir sdpneg.Direction) *sdpneg.Remote {
	u.t.Helper()
	u.invite(dir)
	res := u.response(sip.INVITE, 200, 5*time.Second)
	if res.StatusCode != 200 {
		u.t.Fatalf("re-INVITE %s: %d %s", dir, res.StatusCode, res.Reason)
	}
	u.inDialog("ACK", u.cseq, "")
	r := u.applyAnswer(res)
	u.sess.SetDirection(dir.CanSend(), dir.CanRecv())
	return r
}

// answer accepts the INVITE inv (sent from src) with 200 and this UA's
// SDP, as tag, sends its media to the offer, and waits for the ACK.
func (u *rawUA) answer(inv *sip.Request, src netip.AddrPort, tag string) {
	u.t.Helper()
	offer, err := sdpneg.Parse(inv.Body())
	if err != nil {
		u.t.Fatal(err)
	}
	if err := u.sess.SetRemote(offer.AddrPort()); err != nil {
		u.t.Fatal(err)
	}
	u.respondBody(inv, src, 200, "OK", tag, []byte(u.sdp(sdpneg.SendRecv)), u.contact())
	if _, ack := u.request(sip.ACK, 5*time.Second); !ack.IsValid() {
		u.t.Fatalf("%s: no ACK source", u.user)
	}
}

// subscribe sends a SUBSCRIBE for event to ruser at the PBX (u.target) in
// the dialog u.callID/u.fromTag (toTag empty for a new subscription) and
// returns the final response.
func (u *rawUA) subscribe(ruser, event, accept string, cseq int, toTag string, expires int) *sip.Response {
	u.t.Helper()
	to := fmt.Sprintf("<sip:%s@%s>", ruser, u.target)
	if toTag != "" {
		to += ";tag=" + toTag
	}
	u.send(u.target, fmt.Sprintf("SUBSCRIBE sip:%s@%s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\n"+
		"To: %s\r\nCall-ID: %s\r\nCSeq: %d SUBSCRIBE\r\nContact: <sip:%s@%s>\r\nEvent: %s\r\n"+
		"Accept: %s\r\nExpires: %d\r\nContent-Length: 0\r\n\r\n",
		ruser, u.target, u.via(), u.user, domain, u.fromTag, to, u.callID, cseq, u.user, u.addr, event, accept, expires))
	return u.response(sip.SUBSCRIBE, 200, 5*time.Second)
}

// notify reads the next NOTIFY, answers it 200, checks that it is for
// event with a body of type ctype, and returns it.
func (u *rawUA) notify(event, ctype string) *sip.Request {
	u.t.Helper()
	n, src := u.request(sip.NOTIFY, 5*time.Second)
	u.respond(n, src, 200, "OK", "")
	if n.GetHeader("Event").Value() != event || n.ContentType().Value() != ctype {
		u.t.Fatalf("NOTIFY:\n%s", n)
	}
	return n
}
