package browsersite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/siplab/siplab/webphone/headless"
)

// DefaultNS is the namespace browser calls use.
const DefaultNS = "siplab-chrome"

// CallOptions is one browser call from the site.
type CallOptions struct {
	User, Password, Target string
	// Policy is the page's ICE transport policy: "" (the SBC's), all or
	// relay (TURN candidates only, a locked-down network).
	Policy string
	// Media is how long to wait after the call's 200 OK for the browser
	// to hear audio on a selected pair (default 20 s): ICE failing shows
	// as no audio when it ends.
	Media time.Duration
	// Hold keeps the call up at least this long after the answer.
	Hold time.Duration
}

// Outcome is what the browser saw.
type Outcome struct {
	// Page is window.phoneState when the media wait ended (before the
	// hang-up): candidates, pairs with their checks, selected pair,
	// inbound audio.
	Page headless.State
	// Setup is the time from the Call click to the 200 OK (ICE gathering,
	// which a dead STUN server stretches, is part of it).
	Setup time.Duration
	// Hearing: the browser receives audio on a selected pair.
	Hearing bool
}

// Call places a browser call from the site: a fresh namespace and
// Chromium, the page loaded with opts' policy, REGISTER, INVITE; then it
// waits up to opts.Media for audio, runs during (if not nil) while the
// call is still up — the caller reads the lab then — holds, hangs up,
// unregisters and removes everything. An error is a call that could not
// be placed (no root, no Chromium, no lab, REGISTER or INVITE failed);
// ICE failing is an Outcome with Hearing false.
func Call(ctx context.Context, o CallOptions, during func(ctx context.Context, page headless.State) error) (Outcome, error) {
	var out Outcome
	if o.Media == 0 {
		o.Media = 20 * time.Second
	}
	unlock, err := oneAtATime()
	if err != nil {
		return out, err
	}
	defer unlock()
	site, err := Open(ctx, DefaultNS)
	if err != nil {
		return out, err
	}
	defer site.Close()
	b, err := site.Start(2*time.Minute + o.Media + o.Hold)
	if err != nil {
		return out, err
	}
	defer b.Close()
	if err := headless.Open(b.Ctx, PageURL(o.User, o.Target, o.Policy), o.Password); err != nil {
		return out, fmt.Errorf("browsersite: %s at %s: %w", o.User, PhoneURL, err)
	}
	start := time.Now()
	if _, err := headless.Call(b.Ctx); err != nil {
		return out, fmt.Errorf("browsersite: %s calls %s: %w", o.User, o.Target, err)
	}
	answered := time.Now()
	out.Setup = answered.Sub(start)
	out.Page, err = headless.Wait(b.Ctx, "audio on a selected pair", o.Media, headless.State.Hearing)
	out.Hearing = err == nil
	if err != nil && ctx.Err() != nil {
		return out, ctx.Err()
	}
	if during != nil {
		if err := during(ctx, out.Page); err != nil {
			return out, err
		}
	}
	if rest := o.Hold - time.Since(answered); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
		}
	}
	if err := headless.HangUp(b.Ctx); err != nil {
		return out, fmt.Errorf("browsersite: hang up: %w", err)
	}
	return out, nil
}

// ErrBusy is returned when another browser call from the site is running:
// there is one namespace (one browser address), and a second call would
// replace it under the first.
var ErrBusy = errors.New("browsersite: another browser call from the browser site is running (siplab webphone call, an ICE exercise check); try again when it ends")

// oneAtATime takes the site's lock, without waiting.
func oneAtATime() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "siplab-browsersite.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("browsersite: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("browsersite: lock: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
