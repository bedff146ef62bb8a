//go:build !linux

package uaclient

import (
	"errors"
	"net/netip"
)

// ErrGateway wraps failures to install the default route.
var ErrGateway = errors.New("uaclient: cannot set default gateway")

// SetDefaultGateway is only implemented on Linux, where the lab runs.
func SetDefaultGateway(gw netip.Addr) error {
	return errors.New("uaclient: -gateway needs Linux (netlink)")
}
