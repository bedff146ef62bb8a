// Package browsersite places browser calls from the lab's browser site
// (docs/webrtc.md): headless Chromium (webphone/headless) in a network
// namespace whose only interface is a veth port of the siplab-browser
// bridge, with router-w as its default route. Chromium there gathers only
// its site address (192.168.9.10, never the host's other interfaces) and
// reaches the lab only through router-w's NAT — a real browser behind a
// real NAT, for the e2e test, `siplab webphone call` and the ICE exercises.
// It needs root (ip netns) and Debian's chromium.
package browsersite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/webphone/headless"
)

// The site, as docker-compose.yml and lab-nets/README.md make it.
const (
	Bridge   = "siplab-browser"
	Router   = "192.168.9.254" // router-w's LAN address
	Addr     = "192.168.9.10"  // the headless browser; 192.168.9.1 is the host's own browser
	prefix   = "/24"
	PhoneURL = "https://203.0.113.5:8443/phone/"
)

// Site is the browser's network namespace on the bridge.
type Site struct {
	NS            string
	hostIf, nsIf  string
	deleteOnClose bool
}

// ErrNotRoot is returned when the namespace cannot be made without root.
var ErrNotRoot = errors.New("browsersite: a browser call from the browser site needs root (ip netns, a veth on the siplab-browser bridge): run siplab as root")

// Open makes the namespace ns (a leftover of the same name from an
// aborted run is replaced) with one veth port on the browser bridge,
// address Addr, default route router-w. Close removes both.
func Open(ctx context.Context, ns string) (*Site, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("browsersite: ip(8) (iproute2) is needed: %w", err)
	}
	if err := exec.CommandContext(ctx, "ip", "link", "show", Bridge).Run(); err != nil {
		return nil, fmt.Errorf("browsersite: no bridge %s: is the lab up (siplab up)? %w", Bridge, err)
	}
	// Interface names are at most 15 bytes: derive them from a short tag.
	tag := ns
	if len(tag) > 9 {
		tag = tag[len(tag)-9:]
	}
	s := &Site{NS: ns, hostIf: "sb" + tag + "0", nsIf: "sb" + tag + "1"}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	_ = exec.Command("ip", "link", "del", s.hostIf).Run()
	s.deleteOnClose = true
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", s.hostIf, "type", "veth", "peer", "name", s.nsIf, "netns", ns},
		{"link", "set", s.hostIf, "master", Bridge},
		{"link", "set", s.hostIf, "up"},
		{"netns", "exec", ns, "ip", "link", "set", "lo", "up"},
		// No IPv6 link-local address: the kernel would add it a moment
		// after the link comes up and mark it preferred after DAD, and
		// Chromium, already loading the page by then, takes that for a
		// network change and aborts the load (net::ERR_NETWORK_CHANGED,
		// once in a CI run). The lab is IPv4 only.
		{"netns", "exec", ns, "ip", "link", "set", s.nsIf, "addrgenmode", "none"},
		{"netns", "exec", ns, "ip", "addr", "add", Addr + prefix, "dev", s.nsIf},
		{"netns", "exec", ns, "ip", "link", "set", s.nsIf, "up"},
		{"netns", "exec", ns, "ip", "route", "add", "default", "via", Router},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			s.Close()
			return nil, fmt.Errorf("browsersite: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return s, nil
}

// Close removes the namespace and the veth pair.
func (s *Site) Close() {
	if !s.deleteOnClose {
		return
	}
	_ = exec.Command("ip", "link", "del", s.hostIf).Run()
	_ = exec.Command("ip", "netns", "del", s.NS).Run()
	s.deleteOnClose = false
}

// InNamespace makes chromedp start Chromium through `ip netns exec`, which
// execs it in place: chromedp's pipes and the parent-death signal carry
// over.
func InNamespace(ns string) chromedp.ExecAllocatorOption {
	return chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		ip, err := exec.LookPath("ip")
		if err != nil {
			ip = "/usr/sbin/ip"
		}
		cmd.Args = append([]string{"ip", "netns", "exec", ns, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = ip
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	})
}

// Browser is Chromium running in the site with the tone microphone.
type Browser struct {
	Ctx  context.Context // the tab
	stop func()
	dir  string
}

// Start runs headless Chromium in the site's namespace, the fake
// microphone playing headless.ToneHz, for at most life.
func (s *Site) Start(life time.Duration) (*Browser, error) {
	dir, err := os.MkdirTemp("", "siplab-webphone-")
	if err != nil {
		return nil, fmt.Errorf("browsersite: %w", err)
	}
	wav := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(wav, headless.ToneWAV(headless.ToneHz, 20), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("browsersite: %w", err)
	}
	ctx, stop, err := headless.Start(wav, life, InNamespace(s.NS))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Browser{Ctx: ctx, stop: stop, dir: dir}, nil
}

// Close hangs up and unregisters what is up, then closes Chromium.
func (b *Browser) Close() {
	headless.Leave(b.Ctx)
	b.stop()
	os.RemoveAll(b.dir)
}

// PageURL is the phone page for user calling target, with the page's ICE
// policy ("" = the SBC's, else all or relay).
func PageURL(user, target, policy string) string {
	u := PhoneURL + "?user=" + user + "&target=" + target
	if policy != "" {
		u += "&policy=" + policy
	}
	return u
}
