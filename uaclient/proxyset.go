package uaclient

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// proxySetting is the live `proxy` setting: the outbound server every
// out-of-dialog request (REGISTER, INVITE, OPTIONS, keep-alives) goes to.
// The lab flips a phone from the platform proxy to the SBC with it
// (`siplab set alice proxy 203.0.113.5:5060`) without a restart.
var proxySetting = setting{
	Name: "proxy",
	Help: "outbound server ip:port every out-of-dialog request goes to ('none' = no server). A change un-registers through the old server and registers through the new one; calls already up keep their route.",
	get: func(s *liveSettings) string {
		if s.Proxy == "" {
			return "none"
		}
		return s.Proxy
	},
	set: func(s *liveSettings, v string) error {
		v = strings.TrimSpace(v)
		next := ""
		switch strings.ToLower(v) {
		case "", "none", "off":
		default:
			hp, err := normHostPort(v, 5060)
			if err != nil {
				return fmt.Errorf("%w: proxy %q: want ip:port or none: %w", ErrBadValue, v, err)
			}
			next = hp
		}
		s.prevProxy, s.Proxy = s.Proxy, next
		return nil
	},
	apply: func(p *Phone) { go p.switchProxy() },
}

// proxy is the current outbound server ("" = none).
func (p *Phone) proxy() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settings.Proxy
}

// switchProxy moves the registration to the new server: an un-REGISTER
// through the old one (so the registrar does not keep a binding that
// forks calls down the old path), then a fresh REGISTER through the new.
func (p *Phone) switchProxy() {
	ctx, cancel := p.lifetime()
	defer cancel()
	p.mu.Lock()
	old, now := p.settings.prevProxy, p.settings.Proxy
	registered := p.reg.state == RegRegistered
	wanted := p.reg.wanted
	p.mu.Unlock()
	if old == now {
		return
	}
	p.kickKeepalive()
	if old != "" && registered {
		uctx, ucancel := context.WithTimeout(ctx, 10*time.Second)
		res, _, err := p.sendRegisterVia(uctx, 0, old)
		ucancel()
		switch {
		case err != nil:
			p.log.Warn("un-REGISTER through the old server failed", "server", old, "err", err)
		default:
			p.log.Info("un-registered through the old server", "server", old, "code", res.StatusCode)
		}
	}
	if !wanted || now == "" {
		return
	}
	p.mu.Lock()
	p.reg.refreshAt = time.Time{} // due now
	p.mu.Unlock()
	p.kickRegistration()
}
