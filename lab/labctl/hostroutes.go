package labctl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// The browser's site (docker-compose.yml, network browser): the one lab
// bridge with a host address. The host reaches the lab only through
// router-w's NAT, and only for the lab's internet ranges: its default route
// and every other destination stay as they are, so nothing of the host's
// own traffic enters the lab and nothing of the lab's leaves the host.
var (
	BrowserBridge  = "siplab-browser"
	BrowserRouter  = netip.MustParseAddr("192.168.9.254") // router-w's LAN address
	HostLabRoutes  = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24")}
	errNotRootHost = errors.New("labctl: host routes need root")
)

// hostRouteArgs is the ip(8) command line for one route: "replace" adds or
// corrects it, "del" removes it.
func hostRouteArgs(verb string, dst netip.Prefix) []string {
	return []string{"route", verb, dst.String(), "via", BrowserRouter.String(), "dev", BrowserBridge}
}

// HostRouteCommands are the commands AddHostRoutes runs, for a user who is
// not root to run with sudo.
func HostRouteCommands() []string {
	var out []string
	for _, p := range HostLabRoutes {
		out = append(out, "ip "+strings.Join(hostRouteArgs("replace", p), " "))
	}
	return out
}

// AddHostRoutes routes the lab's internet ranges via router-w, so a browser
// on the host meets the lab behind NAT. It needs root and the lab's browser
// bridge (the lab must be up).
func (r *Runner) AddHostRoutes(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errNotRootHost
	}
	for _, p := range HostLabRoutes {
		if _, err := r.run(ctx, nil, "ip", hostRouteArgs("replace", p)...); err != nil {
			return fmt.Errorf("labctl: host route to %s via router-w: %w", p, err)
		}
	}
	return nil
}

// DelHostRoutes removes the routes AddHostRoutes made. A route that is not
// there (never added, or gone with the bridge) is no error; a route to the
// same range that goes elsewhere is not ours and stays.
func (r *Runner) DelHostRoutes(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errNotRootHost
	}
	for _, p := range HostLabRoutes {
		out, err := r.run(ctx, nil, "ip", "-o", "route", "show", "exact", p.String())
		if err != nil {
			return fmt.Errorf("labctl: host routes: %w", err)
		}
		if !strings.Contains(string(out), "via "+BrowserRouter.String()+" ") {
			continue
		}
		if _, err := r.run(ctx, nil, "ip", hostRouteArgs("del", p)...); err != nil {
			return fmt.Errorf("labctl: remove host route to %s: %w", p, err)
		}
	}
	return nil
}
