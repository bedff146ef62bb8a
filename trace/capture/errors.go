package capture

import "errors"

var (
	// ErrBadConfig marks a Config that cannot work; the message says why.
	ErrBadConfig = errors.New("capture: bad config")
	// ErrNoInterface means no interface carries an address the selector
	// matches (yet: New waits Config.InterfaceWait for it).
	ErrNoInterface = errors.New("capture: no interface")
	// ErrUnsupportedLink means the interface is not Ethernet-framed (veth,
	// bridge port, physical NIC): loopback sees every packet twice and
	// tun-style links carry no link header.
	ErrUnsupportedLink = errors.New("capture: unsupported link type")
	// ErrInterfaceGone is returned by Run when every captured interface has
	// disappeared (container network disconnected, veth deleted).
	ErrInterfaceGone = errors.New("capture: every captured interface is gone")
	// ErrNotPcapng means a file is not a pcapng capture.
	ErrNotPcapng = errors.New("capture: not a pcapng file")
	// ErrClosed is returned by Run on a Capturer that was closed or already
	// ran.
	ErrClosed = errors.New("capture: closed")
)
