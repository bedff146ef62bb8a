package sbc

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// pingLoop sends OPTIONS to every NATed registration's latched address
// every keepalive_interval, from the access socket the phone registered
// to: the packets keep the phone's NAT mapping (and its filter's pinhole
// for the SBC) alive, so calls still reach a phone whose own keep-alives
// are off. Expired registrations are dropped on the same tick.
func (s *SBC) pingLoop() {
	last := time.Time{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-tick.C:
			s.expireRegs(now)
			iv := s.settings.get().KeepaliveInterval
			if iv <= 0 || now.Sub(last) < iv {
				continue
			}
			last = now
			s.pingAll()
			s.pingTrunk()
		}
	}
}

func (s *SBC) pingAll() {
	s.mu.Lock()
	var due []*registration
	for _, reg := range s.regs {
		if reg.nated && !reg.pinging && reg.live(time.Now()) {
			reg.pinging = true
			due = append(due, reg)
		}
	}
	s.mu.Unlock()
	for _, reg := range due {
		s.wg.Go(func() { s.ping(reg) })
	}
}

// ping sends one OPTIONS to a registration and records the outcome.
func (s *SBC) ping(reg *registration) {
	s.mu.Lock()
	target := *reg.contact.Address.Clone()
	dest, transport := reg.source, reg.transport
	s.mu.Unlock()
	target.Headers = nil
	req := s.pingRequest(target, dest, strings.ToUpper(transport))
	s.count(func(c *Counters) { c.PingsSent++ })

	// A short wait: the answer only proves the path, and the next round
	// comes anyway. Over UDP the transaction retransmits meanwhile.
	ctx, cancel := s.lifetime(4 * time.Second)
	defer cancel()
	res, err := s.do(ctx, access, req)
	result := ""
	switch {
	case err != nil:
		result = "no answer"
	default:
		// Any response, even 405, proves the phone and its NAT passed it.
		result = fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
		s.count(func(c *Counters) { c.PingsAnswered++ })
	}
	s.mu.Lock()
	reg.lastPing, reg.pingResult = time.Now(), result
	reg.pingsSent++
	if err == nil {
		reg.pingsOK++
	}
	reg.pinging = false
	s.mu.Unlock()
	s.log.Debug("keep-alive ping", "aor", reg.aor, "to", dest, "result", result)
}

// pingRequest is an out-of-dialog keep-alive OPTIONS from the SBC's
// access face to target, sent to dest over transport.
func (s *SBC) pingRequest(target sip.Uri, dest netip.AddrPort, transport string) *sip.Request {
	req := sip.NewRequest(sip.OPTIONS, target)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "sbc", Host: s.ep[access].Addr().Addr().String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	cid := sip.CallIDHeader(s.newCallID(access))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	req.SetDestination(dest.String())
	req.SetTransport(transport)
	return req
}

// trunkState is what the SBC knows of the carrier from its OPTIONS pings:
// a trunk that stops answering is down, and the status says since when.
type trunkState struct {
	pinging   bool
	lastPing  time.Time
	result    string
	up        bool
	sent, ok  uint64
	downSince time.Time
}

// pingTrunk sends the carrier an OPTIONS (the trunk's keep-alive in the
// SBC's direction; the carrier pings the SBC, which answers 200).
func (s *SBC) pingTrunk() {
	if !s.cfg.Trunk.IsValid() {
		return
	}
	s.mu.Lock()
	if s.trunk.pinging {
		s.mu.Unlock()
		return
	}
	s.trunk.pinging = true
	s.mu.Unlock()
	s.wg.Go(func() {
		target := sip.Uri{Scheme: "sip", Host: s.cfg.Trunk.Addr().String(), Port: int(s.cfg.Trunk.Port())}
		req := s.pingRequest(target, s.cfg.Trunk, "UDP")
		ctx, cancel := s.lifetime(4 * time.Second)
		defer cancel()
		res, err := s.do(ctx, access, req)
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		t := &s.trunk
		t.pinging, t.lastPing = false, now
		t.sent++
		wasUp := t.up
		if err != nil {
			t.result, t.up = "no answer", false
		} else {
			t.result, t.up = fmt.Sprintf("%d %s", res.StatusCode, res.Reason), true
			t.ok++
		}
		switch {
		case wasUp && !t.up:
			t.downSince = now
			s.log.Warn("trunk down: no answer to OPTIONS", "trunk", s.cfg.Trunk)
		case !wasUp && t.up:
			t.downSince = time.Time{}
			s.log.Info("trunk up", "trunk", s.cfg.Trunk, "answer", t.result)
		}
	})
}
