package uaclient

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// MessageView is one SIP message as this phone sent or received it: the
// headers the training page's message-anatomy module names, and the SDP
// lines that decide the media (module 06). Comparing the caller's "sent"
// with the callee's "received" shows what the NATs, the proxy or an ALG
// changed on the way.
type MessageView struct {
	At        time.Time `json:"at"`
	StartLine string    `json:"start_line"`
	// Peer is where it went to or came from (ip:port on the wire).
	Peer    string   `json:"peer,omitempty"`
	Via     []string `json:"via"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	CallID  string   `json:"call_id"`
	CSeq    string   `json:"cseq"`
	Contact string   `json:"contact,omitempty"`
	// SDP lines, when the message carries SDP.
	SDP *SDPView `json:"sdp,omitempty"`
}

// SDPView is the SDP lines that decide where media goes and in what.
type SDPView struct {
	Origin     string   `json:"o,omitempty"`
	Connection []string `json:"c,omitempty"`
	Media      []string `json:"m,omitempty"`
	RTPMap     []string `json:"rtpmap,omitempty"`
	// Direction is the a=sendrecv/sendonly/recvonly/inactive attribute
	// ("" = none written, which means sendrecv).
	Direction string `json:"direction,omitempty"`
}

// LastInvite is the last INVITE (initial or re-INVITE) and 2xx answer this
// phone sent and received.
type LastInvite struct {
	InviteSent     *MessageView `json:"invite_sent,omitempty"`
	InviteReceived *MessageView `json:"invite_received,omitempty"`
	AnswerSent     *MessageView `json:"answer_sent,omitempty"`
	AnswerReceived *MessageView `json:"answer_received,omitempty"`
}

// sipMessage is what requests and responses share that a view reads.
type sipMessage interface {
	GetHeaders(name string) []sip.Header
	GetHeader(name string) sip.Header
	Body() []byte
	StartLine() string
}

func viewOf(m sipMessage, peer string) *MessageView {
	v := &MessageView{At: time.Now(), Peer: peer, StartLine: m.StartLine()}
	for _, h := range m.GetHeaders("Via") {
		v.Via = append(v.Via, h.Value())
	}
	val := func(name string) string {
		if h := m.GetHeader(name); h != nil {
			return h.Value()
		}
		return ""
	}
	v.From, v.To, v.CallID, v.CSeq, v.Contact = val("From"), val("To"), val("Call-ID"), val("CSeq"), val("Contact")
	if ct := val("Content-Type"); strings.HasPrefix(strings.ToLower(ct), "application/sdp") && len(m.Body()) > 0 {
		v.SDP = sdpView(m.Body())
	}
	return v
}

func sdpView(body []byte) *SDPView {
	s := &SDPView{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "o="):
			s.Origin = line
		case strings.HasPrefix(line, "c="):
			s.Connection = append(s.Connection, line)
		case strings.HasPrefix(line, "m="):
			s.Media = append(s.Media, line)
		case strings.HasPrefix(line, "a=rtpmap:"):
			s.RTPMap = append(s.RTPMap, line)
		case line == "a=sendrecv", line == "a=sendonly", line == "a=recvonly", line == "a=inactive":
			s.Direction = strings.TrimPrefix(line, "a=")
		}
	}
	return s
}

// noteInvite records a message for LastInvite; which says the slot.
func (p *Phone) noteInvite(which string, m sipMessage, peer string) {
	v := viewOf(m, peer)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch which {
	case "invite_sent":
		p.lastInvite.InviteSent = v
	case "invite_received":
		p.lastInvite.InviteReceived = v
	case "answer_sent":
		p.lastInvite.AnswerSent = v
	case "answer_received":
		p.lastInvite.AnswerReceived = v
	}
}
