//go:build linux

package uaclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var errNoNetns = errors.New("cannot create a network namespace")

// TestSetDefaultGateway runs in a throwaway network namespace so it never
// touches the host's routes.
func TestSetDefaultGateway(t *testing.T) {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends its thread exits, and
		// the namespace with it, instead of leaking into the test binary.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("%w: %v", errNoNetns, err)
			return
		}
		defer ns.Close()
		errc <- gatewayCases()
	}()
	err := <-errc
	if errors.Is(err, errNoNetns) {
		t.Fatalf("needs root (CAP_SYS_ADMIN) for a private network namespace; fails rather than skips: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func gatewayCases() error {
	// The loopback link exists in every namespace (dummy links may not be
	// available in a sandboxed kernel); a /24 on it makes a connected net.
	link, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%w: no lo: %v", errNoNetns, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("%w: lo up: %v", errNoNetns, err)
	}
	addr, _ := netlink.ParseAddr("10.99.0.2/24")
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("%w: address on lo: %v", errNoNetns, err)
	}
	cases := []struct {
		gw      string
		wantErr bool
	}{
		{gw: "192.0.2.1", wantErr: true}, // not on any connected network
		{gw: "10.99.0.1"},
		{gw: "10.99.0.254"}, // replaces, does not add a second default
	}
	for _, c := range cases {
		err := SetDefaultGateway(netip.MustParseAddr(c.gw))
		if c.wantErr {
			if !errors.Is(err, ErrGateway) {
				return fmt.Errorf("gateway %s: err %v, want ErrGateway", c.gw, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("gateway %s: %w", c.gw, err)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		var defaults []net.IP
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				defaults = append(defaults, r.Gw)
			}
		}
		if len(defaults) != 1 || defaults[0].String() != c.gw {
			return fmt.Errorf("after gateway %s: default routes via %v", c.gw, defaults)
		}
	}
	return nil
}
