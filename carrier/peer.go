package carrier

import (
	"context"
	"time"
)

// Peer states. Unknown until the first ping has an outcome.
const (
	PeerUnknown = "unknown"
	PeerUp      = "up"
	PeerDown    = "down"
)

// PeerStatus is what the OPTIONS pings say about the trunk peer.
type PeerStatus struct {
	Addr      string `json:"addr"`
	Transport string `json:"transport"`
	// State is up (the last ping got a 2xx), down (an error response or
	// no answer) or unknown (no ping yet).
	State string `json:"state"`
	// LastCode/LastReason of the last ping's response (0: none came).
	LastCode   int    `json:"last_code,omitempty"`
	LastReason string `json:"last_reason,omitempty"`
	// RTTMs is the last answered ping's round trip.
	RTTMs    int64     `json:"rtt_ms"`
	LastPing time.Time `json:"last_ping,omitzero"`
	LastUp   time.Time `json:"last_up,omitzero"`
	Error    string    `json:"error,omitempty"`
	Sent     int       `json:"sent"`
	Answered int       `json:"answered"`
	Interval string    `json:"interval"`
}

// pingTimeout bounds one ping: an unanswered OPTIONS over UDP gives up by
// itself at 64*T1 = 32 s (Timer F).
const pingTimeout = 32 * time.Second

func (c *Carrier) startPings(ctx context.Context) {
	if c.cfg.OptionsInterval < 0 {
		return
	}
	c.pingOnce.Do(func() {
		c.wg.Add(1)
		go c.pingLoop(ctx)
	})
}

// pingLoop pings the peer at once and then every OptionsInterval, one ping
// at a time: a slow peer is not piled up on.
func (c *Carrier) pingLoop(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.OptionsInterval)
	defer t.Stop()
	for {
		c.Ping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-t.C:
		}
	}
}

// Ping sends one OPTIONS to the peer now and returns the updated peer
// status: up on a 2xx, down on anything else.
func (c *Carrier) Ping(ctx context.Context) PeerStatus {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	res, err := c.phone.Options(ctx, "")
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.peer.State
	p := &c.peer
	p.Sent++
	p.LastPing = now
	p.LastCode, p.LastReason, p.Error = res.Code, res.Reason, ""
	switch {
	case err != nil && res.Code == 0:
		p.State, p.Error = PeerDown, err.Error()
	case res.Code >= 200 && res.Code < 300:
		p.State, p.RTTMs, p.LastUp = PeerUp, res.RTTMs, now
		p.Answered++
	default:
		p.State = PeerDown
		p.Answered++
	}
	if p.State != was {
		c.log.Info("trunk peer "+p.State, "peer", p.Addr, "code", p.LastCode, "rtt_ms", p.RTTMs, "err", p.Error)
	}
	return c.peerStatusLocked()
}

func (c *Carrier) peerStatusLocked() PeerStatus {
	p := c.peer
	p.Interval = "off"
	if c.cfg.OptionsInterval > 0 {
		p.Interval = c.cfg.OptionsInterval.String()
	}
	return p
}
