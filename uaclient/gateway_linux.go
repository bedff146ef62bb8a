//go:build linux

package uaclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// ErrGateway wraps failures to install the default route.
var ErrGateway = errors.New("uaclient: cannot set default gateway")

// SetDefaultGateway replaces the default route of the current network
// namespace with one via gw. The lab uses it at phone start so the phone
// reaches the world only through its site's NAT router, whatever default
// route Docker gave the container. It needs CAP_NET_ADMIN.
func SetDefaultGateway(gw netip.Addr) error {
	if !gw.IsValid() || gw.IsUnspecified() {
		return fmt.Errorf("%w: %q is not a usable address", ErrGateway, gw)
	}
	gw = gw.Unmap()
	ip := net.IP(gw.AsSlice())
	// The gateway must be on a connected network: find the link that
	// reaches it, as `ip route replace default via` does.
	routes, err := netlink.RouteGet(ip)
	if err != nil {
		return fmt.Errorf("%w: no route to gateway %s: %w", ErrGateway, gw, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return fmt.Errorf("%w: no interface reaches gateway %s", ErrGateway, gw)
	}
	if routes[0].Gw != nil {
		return fmt.Errorf("%w: gateway %s is not on a directly connected network (reached via %s)", ErrGateway, gw, routes[0].Gw)
	}
	family := netlink.FAMILY_V4
	if gw.Is6() {
		family = netlink.FAMILY_V6
	}
	r := &netlink.Route{LinkIndex: routes[0].LinkIndex, Gw: ip, Family: family}
	if err := netlink.RouteReplace(r); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%w via %s: permission denied; the container needs CAP_NET_ADMIN (docker --cap-add NET_ADMIN): %w", ErrGateway, gw, err)
		}
		return fmt.Errorf("%w via %s: %w", ErrGateway, gw, err)
	}
	return nil
}
