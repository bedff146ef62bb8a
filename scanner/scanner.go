package scanner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Run attacks cfg.Target from conn until Count attempts are done or ctx
// ends. The caller owns conn (tests pass a loopback socket).
func Run(ctx context.Context, conn net.PacketConn, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	local, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return nil, fmt.Errorf("scanner: local address: %w", err)
	}
	s := &run{cfg: cfg, conn: conn, local: local, dst: net.UDPAddrFromAddrPort(cfg.Target),
		rep: &Report{Mode: cfg.Mode, Target: cfg.Target.String(), Statuses: map[int]int{}},
		buf: make([]byte, 65535)}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := start
	for i := 0; i < cfg.Count; i++ {
		if err := ctx.Err(); err != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		next = next.Add(interval)
		s.rep.Attempts++
		var res *sip.Response
		var err error
		switch cfg.Mode {
		case ModeOptions:
			res, err = s.options()
		case ModeReplay:
			res, err = s.replay()
		default:
			res, err = s.guess(cfg.Passwords[i%len(cfg.Passwords)])
		}
		if err != nil {
			return s.rep, err
		}
		if res == nil {
			s.rep.Silent++
			continue
		}
		s.rep.LastAnswered = s.rep.Attempts
		s.rep.Statuses[res.StatusCode]++
		s.noteServer(res)
		if cfg.Mode == ModeRegister && res.StatusCode == sip.StatusOK {
			s.rep.Cracked = cfg.Passwords[i%len(cfg.Passwords)]
			break
		}
	}
	s.rep.Duration = time.Since(start)
	return s.rep, nil
}

type run struct {
	cfg   Config
	conn  net.PacketConn
	local netip.AddrPort
	dst   *net.UDPAddr
	rep   *Report
	buf   []byte
}

func (s *run) options() (*sip.Response, error) {
	callID := token()
	return s.exchange(s.request("OPTIONS", "sip:"+s.cfg.Domain, "100", callID, 1, ""), callID)
}

// guess is one svcrack attempt: REGISTER, and if challenged, REGISTER again
// with credentials computed from the guessed password.
func (s *run) guess(password string) (*sip.Response, error) {
	callID := token()
	uri := "sip:" + s.cfg.Domain
	res, err := s.exchange(s.request("REGISTER", uri, s.cfg.User, callID, 1, ""), callID)
	if err != nil || res == nil {
		return res, err
	}
	if res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired {
		return res, nil
	}
	chalHdr, credHdr := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		chalHdr, credHdr = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(chalHdr)
	if h == nil {
		return res, nil
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return res, nil // an unusable challenge ends this attempt, not the run
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri, Username: s.cfg.User, Password: password, Count: 1})
	if err != nil {
		return res, nil
	}
	s.rep.Requests++ // the first request is counted by exchange
	return s.exchange(s.request("REGISTER", uri, s.cfg.User, callID, 2, credHdr+": "+cred.String()+"\r\n"), callID)
}

func (s *run) request(method, ruri, user, callID string, cseq int, extra string) []byte {
	host := s.local.String()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", host, token())
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", user, s.cfg.Domain, token()[:8])
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", user, s.cfg.Domain)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", user, host)
	if method == "REGISTER" {
		fmt.Fprintf(&b, "Expires: 60\r\n")
	}
	fmt.Fprintf(&b, "User-Agent: %s\r\n", s.cfg.UserAgent)
	b.WriteString(extra)
	fmt.Fprintf(&b, "Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// exchange sends req and waits up to Timeout for its final response,
// skipping provisionals and stray packets. nil means silence.
func (s *run) exchange(req []byte, callID string) (*sip.Response, error) {
	s.rep.Requests++
	if _, err := s.conn.WriteTo(req, s.dst); err != nil {
		return nil, fmt.Errorf("scanner: send: %w", err)
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	for {
		if err := s.conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("scanner: %w", err)
		}
		n, _, err := s.conn.ReadFrom(s.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, nil
			}
			return nil, fmt.Errorf("scanner: receive: %w", err)
		}
		msg, err := sip.ParseMessage(slices.Clone(s.buf[:n]))
		if err != nil {
			continue
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.StatusCode < 200 {
			continue
		}
		if id := res.CallID(); id == nil || id.Value() != callID {
			continue // a late answer to an earlier attempt
		}
		return res, nil
	}
}

func (s *run) noteServer(res *sip.Response) {
	for _, name := range []string{"Server", "User-Agent"} {
		if h := res.GetHeader(name); h != nil {
			v := name + ": " + h.Value()
			if !slices.Contains(s.rep.Servers, v) && len(s.rep.Servers) < 8 {
				s.rep.Servers = append(s.rep.Servers, v)
			}
		}
	}
}

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + strconv.Itoa(int(time.Now().UnixNano()%1000))
}
