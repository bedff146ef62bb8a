package uaclient

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// MessageRecord is one pager-mode instant message (RFC 3428 MESSAGE) this
// phone sent or received.
type MessageRecord struct {
	Time time.Time `json:"time"`
	// Direction is "in" or "out".
	Direction   string `json:"direction"`
	From        string `json:"from"`
	To          string `json:"to"`
	Text        string `json:"text"`
	ContentType string `json:"content_type,omitempty"`
	// Code/Reason: the answer to a sent message; what we answered to a
	// received one.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Source is where a received MESSAGE came from on the wire.
	Source string `json:"source,omitempty"`
}

// maxMessages bounds the messages kept for status; maxMessageText is a
// long log pasted into a chat: more than one 1500-byte packet, which goes
// over TCP (tcp_switch on) or in IP fragments (off), well under what
// sipgo reads from one datagram.
const (
	maxMessages    = 100
	maxMessageText = 4000
)

// SendMessage sends text/plain text to target through the proxy and
// reports the answer. A failure response is a result (Code >= 300), not
// an error; err is set only when no answer came.
func (p *Phone) SendMessage(ctx context.Context, target, text string) (MessageRecord, error) {
	if p.proxy() == "" {
		return MessageRecord{}, ErrNoProxy
	}
	if text == "" {
		return MessageRecord{}, fmt.Errorf("%w: empty message", ErrBadValue)
	}
	if len(text) > maxMessageText {
		return MessageRecord{}, fmt.Errorf("%w: message of %d bytes (at most %d)", ErrBadValue, len(text), maxMessageText)
	}
	if !utf8.ValidString(text) {
		return MessageRecord{}, fmt.Errorf("%w: message is not UTF-8", ErrBadValue)
	}
	to, err := p.parseTarget(target)
	if err != nil {
		return MessageRecord{}, err
	}
	s := p.currentSettings()
	req := p.newRequest(sip.MESSAGE, to, to, newCallID(p.local), 1, s)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(text))
	if err := p.toProxy(req); err != nil {
		return MessageRecord{}, err
	}
	aor := p.aor()
	rec := MessageRecord{Time: time.Now(), Direction: "out", From: aor.String(), To: to.String(), Text: text, ContentType: "text/plain"}
	res, _, err := p.doAuth(ctx, req)
	if res != nil {
		rec.Code, rec.Reason = res.StatusCode, res.Reason
	}
	if rec.Code != 0 || err != nil {
		if rec.Code == 0 {
			rec.Reason = strings.TrimPrefix(err.Error(), "uaclient: ")
		}
		p.addMessage(rec)
	}
	if err != nil && rec.Code == 0 {
		return rec, err
	}
	p.log.Info("MESSAGE sent", "to", rec.To, "code", rec.Code, "reason", rec.Reason)
	return rec, nil
}

func (p *Phone) addMessage(m MessageRecord) {
	p.mu.Lock()
	p.messages = append(p.messages, m)
	if len(p.messages) > maxMessages {
		p.messages = p.messages[len(p.messages)-maxMessages:]
	}
	p.notifyLocked()
	p.mu.Unlock()
}

// Messages lists the messages sent and received, oldest first.
func (p *Phone) Messages() []MessageRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]MessageRecord{}, p.messages...)
}

// onMessage takes text/plain messages, in or out of a dialog.
func (p *Phone) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	if p.noSuchDialog(req, tx) {
		return
	}
	// sipcheck has refused every type but text/plain (415 with Accept).
	rec := MessageRecord{
		Time: time.Now(), Direction: "in", From: req.From().Address.String(), To: req.To().Address.String(),
		ContentType: "text/plain", Source: req.Source(),
	}
	text := string(req.Body())
	if !utf8.ValidString(text) {
		rec.Code, rec.Reason = sip.StatusBadRequest, "Bad Request"
		rec.Text = "(body is not UTF-8)"
		p.addMessage(rec)
		p.respondLog(tx, req, rec.Code, "Bad Request", p.warning(399, "MESSAGE body is not UTF-8"))
		return
	}
	rec.Text = text
	rec.Code, rec.Reason = sip.StatusOK, "OK"
	p.addMessage(rec)
	p.log.Info("MESSAGE received", "from", rec.From, "source", rec.Source, "bytes", len(text))
	p.respondLog(tx, req, sip.StatusOK, "OK")
}
