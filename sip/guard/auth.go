package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Live setting names of an AuthGuard, as `siplab set registrar ...` and
// `siplab set proxy ...` take them.
const (
	SettingAuthFailLimit  = "auth_fail_limit"
	SettingAuthFailWindow = "auth_fail_window"
	SettingAuthBlockFor   = "auth_block_for"
)

// AuthSettingNames lists an AuthGuard's live settings in a stable order.
func AuthSettingNames() []string {
	return []string{SettingAuthFailLimit, SettingAuthFailWindow, SettingAuthBlockFor}
}

// ErrUnknownSetting: not one of AuthSettingNames.
var ErrUnknownSetting = errors.New("guard: unknown setting")

// AuthSettings are an AuthGuard's live settings, for status documents.
type AuthSettings struct {
	FailLimit  int    `json:"auth_fail_limit"`
	FailWindow string `json:"auth_fail_window"`
	BlockFor   string `json:"auth_block_for"`
}

// AuthGuard is the failed-auth guard of a daemon behind the edge
// (registrar, proxy): a Guard with the AuthOnly policy, the log lines a
// fail2ban filter reads (docs/fail2ban.md), and live settings by name.
type AuthGuard struct {
	g       *Guard
	initial Config // what NewAuthGuard was given: Reset puts it back
	log     *slog.Logger
	now     func() time.Time
	setMu   sync.Mutex
}

// NewAuthGuard validates cfg (start from AuthOnly) and logs through log;
// now is the clock (nil: time.Now).
func NewAuthGuard(cfg Config, log *slog.Logger, now func() time.Time) (*AuthGuard, error) {
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &AuthGuard{g: g, initial: g.Config(), log: log, now: now}, nil
}

// Reset puts the startup settings back and lifts every block (the lab's
// `siplab reset`); it returns the settings that had changed and the
// sources it unblocked.
func (a *AuthGuard) Reset() (restored []string, unblocked []netip.Addr) {
	a.setMu.Lock()
	before := a.Settings()
	if err := a.g.SetConfig(a.initial); err != nil {
		// The startup config passed New's validation: this cannot fail.
		a.log.Error("guard reset", "err", err)
	}
	after := a.Settings()
	a.setMu.Unlock()
	if before.FailLimit != after.FailLimit {
		restored = append(restored, SettingAuthFailLimit)
	}
	if before.FailWindow != after.FailWindow {
		restored = append(restored, SettingAuthFailWindow)
	}
	if before.BlockFor != after.BlockFor {
		restored = append(restored, SettingAuthBlockFor)
	}
	for _, b := range a.Blocked() {
		if a.Unblock(b.Source) {
			unblocked = append(unblocked, b.Source)
		}
	}
	return restored, unblocked
}

// Check refuses a request from a blocked source; see Guard.Check. A
// refusal is logged at debug only: a blocked flood would otherwise flood
// the log, and the block's own line plus its hits in status say enough.
func (a *AuthGuard) Check(src netip.Addr, method string) Verdict {
	v := a.g.Check(src, a.now())
	if !v.Allow && a.log.Enabled(context.Background(), slog.LevelDebug) {
		a.log.Debug("request from blocked source refused", "src", src.Unmap().String(), "method", method, "reason", v.Reason)
	}
	return v
}

// Failed counts a failed authentication by src claiming user, and logs it
// (info) and any block it causes (warn), in the stable key=value form of
// docs/fail2ban.md: src is the bare address, user the claimed digest
// username (quoted by slog when needed), reason why it failed.
func (a *AuthGuard) Failed(src netip.Addr, user, reason string) Failure {
	src = src.Unmap()
	f := a.g.Failed(src, a.now())
	a.log.Info("auth failed", "src", src.String(), "user", user, "reason", reason, "fails", f.Fails, "limit", f.Limit)
	if f.Blocked != nil {
		a.log.Warn("source blocked", "src", src.String(), "user", user, "reason", f.Blocked.Reason,
			"until", f.Blocked.Until.UTC().Format(time.RFC3339), "for", f.Blocked.Until.Sub(a.now()).Round(time.Second).String())
	}
	return f
}

// Blocked lists the sources blocked now.
func (a *AuthGuard) Blocked() []Block { return a.g.Blocked(a.now()) }

// Unblock lifts src's block (an operator helping a customer).
func (a *AuthGuard) Unblock(src netip.Addr) bool {
	ok := a.g.Unblock(src.Unmap())
	if ok {
		a.log.Info("source unblocked", "src", src.Unmap().String())
	}
	return ok
}

// Stats are the guard's counters.
func (a *AuthGuard) Stats() Stats { return a.g.Stats() }

// Settings are the live settings in force.
func (a *AuthGuard) Settings() AuthSettings {
	c := a.g.Config()
	return AuthSettings{FailLimit: c.FailedAuthLimit, FailWindow: c.FailedAuthWindow.String(), BlockFor: c.BlockFor.String()}
}

// IsSetting says whether name is one of AuthSettingNames.
func IsSetting(name string) bool {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingAuthFailLimit, SettingAuthFailWindow, SettingAuthBlockFor:
		return true
	}
	return false
}

// Get returns one setting in the text form Set accepts.
func (a *AuthGuard) Get(name string) (string, error) {
	s := a.Settings()
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingAuthFailLimit:
		return strconv.Itoa(s.FailLimit), nil
	case SettingAuthFailWindow:
		return s.FailWindow, nil
	case SettingAuthBlockFor:
		return s.BlockFor, nil
	}
	return "", fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(AuthSettingNames(), ", "))
}

// Set changes one setting live: auth_fail_limit takes a count (0 turns
// blocking off), the others seconds ("60") or a duration ("5m"). Known
// sources keep their counts and blocks' end times.
func (a *AuthGuard) Set(name, value string) error {
	a.setMu.Lock()
	defer a.setMu.Unlock()
	c := a.g.Config()
	value = strings.TrimSpace(value)
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingAuthFailLimit:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%w: %s %q: want a count", ErrInvalidConfig, name, value)
		}
		c.FailedAuthLimit = n
	case SettingAuthFailWindow, SettingAuthBlockFor:
		d, err := ParseSeconds(value)
		if err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrInvalidConfig, name, value, err)
		}
		if d <= 0 {
			// Checked here too: Config.Validate ignores the window while
			// counting is off, but it would bite when counting is back on.
			return fmt.Errorf("%w: %s %q: want > 0", ErrInvalidConfig, name, value)
		}
		if strings.EqualFold(strings.TrimSpace(name), SettingAuthFailWindow) {
			c.FailedAuthWindow = d
		} else {
			c.BlockFor = d
		}
	default:
		return fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(AuthSettingNames(), ", "))
	}
	if err := a.g.SetConfig(c); err != nil {
		return err
	}
	a.log.Info("setting changed", "name", name, "value", value)
	return nil
}

// ParseSeconds reads plain seconds ("60") or a Go duration ("5m").
func ParseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want seconds or a duration like 90s")
	}
	return d, nil
}
