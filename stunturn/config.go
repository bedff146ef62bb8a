// Package stunturn is the lab's STUN/TURN server (RFC 5389 Binding, RFC 5766
// TURN over UDP) on pion/turn: a server on the simulated internet that tells
// each phone the address its NAT gave it, and relays RTP for phones whose
// media cannot flow directly. What it did is the lesson, so it keeps a
// record: every Binding request with the mapped address it answered, and
// every allocation with its user, 5-tuple, relayed address, permissions and
// the bytes relayed each way (Status).
package stunturn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/siplab/siplab/sip/sipauth"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("stunturn: invalid config")

// Defaults for the optional limits.
const (
	DefaultMaxAllocations = 100
	DefaultUserQuota      = 8
	DefaultMaxLifetime    = time.Hour
	DefaultBindingLog     = 200
)

// Config is one server. Zero values of the optional fields are the defaults.
type Config struct {
	// Conn is the UDP socket STUN and TURN are served on (normally port
	// 3478). Required; the server owns it and closes it.
	Conn net.PacketConn
	// Realm of the TURN long-term credentials (RFC 5389 §10.2). Required.
	Realm string
	// Users are the accounts allowed to allocate: the lab's users file, so
	// a phone's SIP password is also its TURN password. Blocked users are
	// refused. Required (STUN Binding needs no account).
	Users *sipauth.Users
	// RelayIP is the address relayed transport addresses are bound to and
	// advertised with: the server's own lab address. Required, not
	// unspecified — a relay must say exactly where peers send.
	RelayIP netip.Addr
	// PortMin and PortMax bound the relay ports (inclusive). Required.
	PortMin, PortMax uint16
	// MaxAllocations bounds live allocations in all; 0 = DefaultMaxAllocations.
	MaxAllocations int
	// UserQuota bounds live allocations per user (RFC 5766 §6.2 "486
	// Allocation Quota Reached"); 0 = DefaultUserQuota.
	UserQuota int
	// MaxLifetime is how long an allocation may live in all, refreshes
	// or not: a forgotten phone cannot hold relay ports for ever.
	// 0 = DefaultMaxLifetime.
	MaxLifetime time.Duration
	// BindingLog is how many clients' Binding records are kept; the
	// oldest is dropped first. 0 = DefaultBindingLog.
	BindingLog int
	Logger     *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return fmt.Errorf("%w: a STUN/TURN socket is required", ErrConfig)
	case c.Realm == "":
		return fmt.Errorf("%w: a realm is required", ErrConfig)
	case c.Users == nil || c.Users.Len() == 0:
		return fmt.Errorf("%w: no users: TURN needs at least one account", ErrConfig)
	case !c.RelayIP.IsValid() || c.RelayIP.IsUnspecified():
		return fmt.Errorf("%w: relay ip %v: want the server's own address", ErrConfig, c.RelayIP)
	case !c.RelayIP.Unmap().Is4():
		// pion allocates udp4 relays only.
		return fmt.Errorf("%w: relay ip %v: only IPv4 relays are supported", ErrConfig, c.RelayIP)
	case c.PortMin == 0 || c.PortMax == 0 || c.PortMin > c.PortMax:
		return fmt.Errorf("%w: relay ports %d-%d: want min-max, 1-65535, min <= max", ErrConfig, c.PortMin, c.PortMax)
	case c.MaxAllocations < 0 || c.UserQuota < 0 || c.MaxLifetime < 0 || c.BindingLog < 0:
		return fmt.Errorf("%w: negative limit", ErrConfig)
	}
	c.RelayIP = c.RelayIP.Unmap()
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
	if c.UserQuota == 0 {
		c.UserQuota = DefaultUserQuota
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.MaxLifetime < time.Second {
		return fmt.Errorf("%w: max lifetime %v below 1s", ErrConfig, c.MaxLifetime)
	}
	if c.BindingLog == 0 {
		c.BindingLog = DefaultBindingLog
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
