package natrouter

import "errors"

var (
	// ErrUnknownPreset is returned for a NAT preset name not in the registry.
	ErrUnknownPreset = errors.New("natrouter: unknown NAT preset")
	// ErrUnknownALG is returned for an ALG mode name not in the registry.
	ErrUnknownALG = errors.New("natrouter: unknown ALG mode")
	// ErrBadPinhole is returned for a pinhole timeout the kernel cannot hold.
	ErrBadPinhole = errors.New("natrouter: bad pinhole timeout")
	// ErrBadConfig is returned by Config validation.
	ErrBadConfig = errors.New("natrouter: bad config")
	// ErrNoInterface is returned when no interface carries an address in the
	// configured LAN or WAN prefix.
	ErrNoInterface = errors.New("natrouter: no interface found")
	// ErrClosed is returned by a Router used after Close.
	ErrClosed = errors.New("natrouter: router closed")
)
