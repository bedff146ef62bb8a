package registrar

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/txlimit"
)

// Config configures a Registrar. The zero value of every field but
// Domain/Realm and Users means a sensible default.
type Config struct {
	// Realm is the digest realm; default Domain.
	Realm string
	// Domain is the SIP domain served: AORs are "sip:user@Domain". Default
	// Realm.
	Domain string
	// Aliases are further hosts ("10.0.0.20", "10.0.0.20:5060",
	// "registrar.lab") accepted in the Request-URI and To of a REGISTER,
	// typically the registrar's own address, since phones are often
	// configured with an IP instead of a domain. AORs are still
	// canonicalised to Domain.
	Aliases []string
	// Users is the user table (required unless Auth is given).
	Users *sipauth.Users
	// Auth authenticates REGISTERs; default an Authenticator over Realm and
	// Users.
	Auth *sipauth.Authenticator
	// MinExpires: shorter non-zero registrations get 423 Interval Too Brief.
	// Default 60 s; negative disables the check. Removal (0) is always OK.
	MinExpires time.Duration
	// MaxExpires clamps longer registrations. Default 24 h.
	MaxExpires time.Duration
	// DefaultExpires applies when neither the Contact nor the request says.
	// Default 3600 s.
	DefaultExpires time.Duration
	// MaxContacts bounds bindings per AOR; default 16.
	MaxContacts int
	// DataDir holds the journal and snapshot. Empty means bindings live in
	// memory only (tests, throwaway labs).
	DataDir string
	// TrustedProxies are source prefixes whose Path "received" parameter is
	// believed as the address the REGISTER was really seen from.
	TrustedProxies []netip.Prefix
	// GCInterval is how often expired bindings are dropped; default 30 s.
	GCInterval time.Duration
	// CompactInterval is how often the journal is folded into a snapshot;
	// default 10 min.
	CompactInterval time.Duration
	// CompactBytes also triggers compaction when the journal grows past it,
	// so disk use stays bounded at any REGISTER rate; default 64 MiB.
	CompactBytes int64
	// Guard is the failed-auth policy (guard.AuthOnly() when nil): a source
	// whose REGISTERs carry FailedAuthLimit wrong passwords within
	// FailedAuthWindow is refused with 403 for BlockFor. The source is
	// where the REGISTER was really seen (a trusted proxy's Path
	// received=). TrustedProxies and GuardTrusted are added to its Trunks.
	Guard *guard.Config
	// GuardTrusted are sources never blocked: an SBC or B2BUA that fronts
	// many users (and guards them itself) would otherwise be blocked for
	// all of them.
	GuardTrusted []netip.Prefix
	// MaxTransactions caps the server transactions held at once (memory
	// bound, see txlimit); beyond it requests get 503. 0 means
	// txlimit.Default, negative no cap.
	MaxTransactions int
	Logger          *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.Domain == "" {
		c.Domain = c.Realm
	}
	if c.Realm == "" {
		c.Realm = c.Domain
	}
	if c.Domain == "" {
		return ErrNoDomain
	}
	c.Domain = strings.ToLower(c.Domain)
	if c.Users == nil && c.Auth == nil {
		return ErrNoUsers
	}
	if c.Users == nil {
		c.Users = c.Auth.Users()
	}
	if c.MinExpires == 0 {
		c.MinExpires = 60 * time.Second
	}
	if c.MinExpires < 0 {
		c.MinExpires = 0
	}
	if c.MaxExpires <= 0 {
		c.MaxExpires = 24 * time.Hour
	}
	// Expires values are 32-bit seconds on the wire.
	c.MaxExpires = min(c.MaxExpires, math.MaxUint32*time.Second)
	if c.DefaultExpires <= 0 {
		c.DefaultExpires = time.Hour
	}
	if c.MaxExpires < c.MinExpires {
		return fmt.Errorf("%w: max %v below min %v", ErrBadExpires, c.MaxExpires, c.MinExpires)
	}
	if c.DefaultExpires > c.MaxExpires {
		c.DefaultExpires = c.MaxExpires
	}
	if c.DefaultExpires < c.MinExpires {
		return fmt.Errorf("%w: default %v below min %v", ErrBadExpires, c.DefaultExpires, c.MinExpires)
	}
	if c.MaxContacts <= 0 {
		c.MaxContacts = 16
	}
	if c.GCInterval <= 0 {
		c.GCInterval = 30 * time.Second
	}
	if c.CompactInterval <= 0 {
		c.CompactInterval = 10 * time.Minute
	}
	if c.CompactBytes <= 0 {
		c.CompactBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	g, err := guard.Behind(c.Guard, c.TrustedProxies, c.GuardTrusted)
	if err != nil {
		return fmt.Errorf("registrar: guard: %w", err)
	}
	c.Guard = g
	switch {
	case c.MaxTransactions == 0:
		c.MaxTransactions = txlimit.Default
	case c.MaxTransactions < 0:
		c.MaxTransactions = 0
	}
	aliases := make([]string, len(c.Aliases))
	for i, a := range c.Aliases {
		aliases[i] = strings.ToLower(a)
	}
	c.Aliases = aliases
	return nil
}
