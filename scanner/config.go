package scanner

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Modes of attack.
const (
	ModeOptions  = "options"  // svmap: who answers, and with what User-Agent
	ModeRegister = "register" // svcrack: guess one account's password
)

// DefaultUserAgent is what SIPVicious announces; scanner detection keys on it.
const DefaultUserAgent = "friendly-scanner"

var ErrBadConfig = errors.New("scanner: bad config")

// Config is one attack run.
type Config struct {
	Target netip.AddrPort // the SIP server attacked
	Mode   string
	// Domain is the Request-URI/To host; default the target IP.
	Domain string
	// User is the account attacked in register mode.
	User string
	// Passwords are tried in order, cycling, until Count attempts.
	Passwords []string
	// Count is how many requests (options) or guesses (register) to send.
	Count int
	// Rate is attempts per second; the run is paced, not a flood.
	Rate float64
	// Timeout is how long to wait for each answer before counting silence.
	Timeout   time.Duration
	UserAgent string
	// Message is the captured request replay mode re-sends.
	Message []byte
}

func (c *Config) validate() error {
	if !c.Target.IsValid() || c.Target.Port() == 0 {
		return fmt.Errorf("%w: target must be ip:port", ErrBadConfig)
	}
	switch c.Mode {
	case ModeOptions:
	case ModeRegister:
		if c.User == "" {
			return fmt.Errorf("%w: register mode needs a user to attack", ErrBadConfig)
		}
		if len(c.Passwords) == 0 {
			return fmt.Errorf("%w: register mode needs passwords to guess", ErrBadConfig)
		}
	case ModeReplay:
		if len(c.Message) == 0 {
			return fmt.Errorf("%w: replay mode needs the captured request to replay", ErrBadConfig)
		}
	default:
		return fmt.Errorf("%w: mode %q (want %s, %s or %s)", ErrBadConfig, c.Mode, ModeOptions, ModeRegister, ModeReplay)
	}
	if c.Count <= 0 || c.Count > 100000 {
		return fmt.Errorf("%w: count %d (1..100000)", ErrBadConfig, c.Count)
	}
	if c.Rate <= 0 || c.Rate > 1000 {
		return fmt.Errorf("%w: rate %g/s (0..1000]", ErrBadConfig, c.Rate)
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	if c.Domain == "" {
		c.Domain = c.Target.Addr().String()
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	return nil
}
