package guard

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Behind is the failed-auth policy of a daemon behind the edge (the
// registrar, the proxy): c, or AuthOnly when c is nil, copied so the
// caller's Config is never edited, with trusted (the daemon's own trusted
// peers) added to its Trunks, and validated.
func Behind(c *Config, trusted ...[]netip.Prefix) (*Config, error) {
	if c == nil {
		g := AuthOnly()
		c = &g
	}
	g := *c
	g.Trunks = append([]netip.Prefix(nil), g.Trunks...)
	for _, t := range trusted {
		g.Trunks = append(g.Trunks, t...)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}

// SettingMaxTransactions is the live cap on server transactions a daemon
// behind the edge holds at once (txlimit); 0 lifts it.
const SettingMaxTransactions = "max_transactions"

// BehindSettingNames lists the live settings of a daemon behind the edge:
// its failed-auth guard's and its transaction cap.
func BehindSettingNames() []string {
	return append(AuthSettingNames(), SettingMaxTransactions)
}

// BehindSettings are the values of BehindSettingNames.
type BehindSettings struct {
	AuthSettings
	MaxTransactions int `json:"max_transactions"`
}

// TxCap is a daemon's cap on transactions held at once (a
// txlimit.Limiter), as its live setting reads and changes it.
type TxCap interface {
	Max() int
	SetMax(n int)
}

// BehindLive reads and changes a daemon behind the edge's live guard
// settings. Errors wrap the daemon's own sentinels: BadValue for a value
// refused, Unknown for a name it does not have.
type BehindLive struct {
	Auth              *AuthGuard
	Cap               TxCap
	Log               *slog.Logger
	BadValue, Unknown error
}

// Settings are the settings in force.
func (b BehindLive) Settings() BehindSettings {
	return BehindSettings{AuthSettings: b.Auth.Settings(), MaxTransactions: b.Cap.Max()}
}

// Set changes one setting by name: auth_fail_limit (count, 0 = off),
// auth_fail_window and auth_block_for (seconds or a duration),
// max_transactions (count, 0 = no cap). It returns the settings then in
// force, changed or not.
func (b BehindLive) Set(name, value string) (BehindSettings, error) {
	if strings.EqualFold(strings.TrimSpace(name), SettingMaxTransactions) {
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 0 {
			return b.Settings(), fmt.Errorf("%w: %s %q: want a count, 0 for no cap", b.BadValue, name, value)
		}
		b.Cap.SetMax(n)
		b.Log.Info("setting changed", "name", SettingMaxTransactions, "value", n)
		return b.Settings(), nil
	}
	if !IsSetting(name) {
		return b.Settings(), fmt.Errorf("%w: %q (have %s)", b.Unknown, name, strings.Join(BehindSettingNames(), ", "))
	}
	if err := b.Auth.Set(name, value); err != nil {
		return b.Settings(), fmt.Errorf("%w: %w", b.BadValue, err)
	}
	return b.Settings(), nil
}

// BlockedWarning is the Warning text of a 403 to a blocked source: why,
// and when the block ends.
func (v Verdict) BlockedWarning() string {
	return v.Reason + "; ends in " + v.RetryAfter.Round(time.Second).String()
}

// RetryAfterSeconds is v.RetryAfter as a Retry-After header's value:
// whole seconds, rounded up so that a retry does not come before the end.
func (v Verdict) RetryAfterSeconds() string {
	return strconv.Itoa(int((v.RetryAfter + time.Second - 1) / time.Second))
}
