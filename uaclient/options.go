package uaclient

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// OptionsResult is what an OPTIONS ping learned.
type OptionsResult struct {
	Target string `json:"target"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	// Headers of interest: Allow, Accept, Supported, Server/User-Agent,
	// Contact and the top Via, whose received/rport say what address the
	// far end saw us from (our NAT mapping).
	Headers map[string]string `json:"headers,omitempty"`
	// Received is received:rport from the response Via, when present.
	Received string `json:"received,omitempty"`
	RTTMs    int64  `json:"rtt_ms"`
}

// Options sends OPTIONS through the proxy to target ("" = the proxy itself)
// and reports the response.
func (p *Phone) Options(ctx context.Context, target string) (OptionsResult, error) {
	if p.proxy() == "" {
		return OptionsResult{}, ErrNoProxy
	}
	var ruri sip.Uri
	if strings.TrimSpace(target) == "" {
		host, port, _ := net.SplitHostPort(p.proxy())
		ruri = sip.Uri{Scheme: "sip", Host: host}
		fmt.Sscan(port, &ruri.Port)
	} else {
		var err error
		if ruri, err = p.parseTarget(target); err != nil {
			return OptionsResult{}, err
		}
	}
	s := p.currentSettings()
	req := p.newRequest(sip.OPTIONS, ruri, ruri, newCallID(p.local), 1, s)
	req.AppendHeader(p.contactHeader(s))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	if err := p.toProxy(req); err != nil {
		return OptionsResult{}, err
	}
	start := time.Now()
	res, _, err := p.doAuth(ctx, req)
	out := OptionsResult{Target: ruri.String(), RTTMs: time.Since(start).Milliseconds()}
	if res != nil {
		out.Code, out.Reason = res.StatusCode, res.Reason
		out.Headers = map[string]string{}
		for _, name := range []string{"Allow", "Accept", "Supported", "Server", "User-Agent", "Contact", "Via"} {
			var vals []string
			for _, h := range res.GetHeaders(name) {
				vals = append(vals, h.Value())
			}
			if len(vals) > 0 {
				out.Headers[name] = strings.Join(vals, ", ")
			}
		}
		if v := res.Via(); v != nil {
			rcv, _ := v.Params.Get("received")
			rp, _ := v.Params.Get("rport")
			switch {
			case rcv != "" && rp != "":
				out.Received = net.JoinHostPort(rcv, rp)
			case rcv != "":
				out.Received = rcv
			}
		}
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

// --- keep-alive --------------------------------------------------------

// KeepaliveStatus reports the pinhole keep-alives sent.
type KeepaliveStatus struct {
	Mode     string    `json:"mode"`
	Interval string    `json:"interval"`
	Sent     int       `json:"sent"`
	Last     time.Time `json:"last,omitzero"`
	// LastResult is "sent" for CRLF (no answer is expected over UDP), the
	// response for OPTIONS, or the error.
	LastResult string `json:"last_result,omitempty"`
}

type keepaliveStatus struct {
	sent       int
	last       time.Time
	lastResult string
}

func (p *Phone) kickKeepalive() {
	select {
	case p.kaKick <- struct{}{}:
	default:
	}
}

// keepaliveLoop pings the proxy while the keepalive setting is on. A
// change of mode or interval sends one right away, so an intern sees the
// effect of the toggle in the capture at once.
func (p *Phone) keepaliveLoop() {
	defer p.wg.Done()
	ctx, cancel := p.lifetime()
	defer cancel()
	var timer *time.Timer
	stop := func() {
		if timer != nil {
			timer.Stop()
		}
	}
	defer stop()
	for {
		s := p.currentSettings()
		var tick <-chan time.Time
		if s.Keepalive != KeepaliveOff {
			stop()
			timer = time.NewTimer(s.KeepaliveInterval)
			tick = timer.C
		}
		select {
		case <-p.done:
			return
		case <-p.kaKick:
		case <-tick:
		}
		s = p.currentSettings()
		if s.Keepalive == KeepaliveOff || s.Proxy == "" {
			continue
		}
		result := p.sendKeepalive(ctx, s.Keepalive)
		p.mu.Lock()
		p.ka.sent++
		p.ka.last = time.Now()
		p.ka.lastResult = result
		p.notifyLocked()
		p.mu.Unlock()
	}
}

func (p *Phone) sendKeepalive(ctx context.Context, mode string) string {
	switch mode {
	case KeepaliveCRLF:
		if err := p.sendCRLF(); err != nil {
			return "error: " + err.Error()
		}
		return "sent"
	case KeepaliveOptions:
		ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
		defer cancel()
		res, err := p.Options(ctx, "")
		if err != nil && res.Code == 0 {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("%d %s", res.Code, res.Reason)
	}
	return "off"
}

// sendCRLF writes the RFC 5626 §3.5.1 double-CRLF ping from the SIP socket,
// so it refreshes the very NAT mapping REGISTER created.
func (p *Phone) sendCRLF() error {
	ping := []byte("\r\n\r\n")
	switch p.cfg.Transport {
	case "udp":
		raddr, err := net.ResolveUDPAddr("udp", p.proxy())
		if err != nil {
			return err
		}
		pc := p.ep.PacketConn()
		if pc == nil {
			return fmt.Errorf("no udp socket")
		}
		_, err = pc.WriteTo(ping, raddr)
		return err
	default:
		raddr, err := net.ResolveTCPAddr("tcp", p.proxy())
		if err != nil {
			return err
		}
		conn, err := p.ep.UA.TransportLayer().GetConnection("tcp", raddr.String())
		if err != nil {
			return fmt.Errorf("no TCP connection to the proxy yet: %w", err)
		}
		defer conn.TryClose()
		w, ok := conn.(io.Writer)
		if !ok {
			return fmt.Errorf("tcp connection not writable")
		}
		_, err = w.Write(ping)
		return err
	}
}
