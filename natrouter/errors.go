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

// ErrKernelALG is returned when the kernel ALG mode cannot run on this host
// (no nf_conntrack_sip / nf_nat_sip).
var ErrKernelALG = errors.New("natrouter: kernel SIP ALG unavailable")

// ErrALGQueue is returned when the broken ALG's NFQUEUE consumer cannot
// start.
var ErrALGQueue = errors.New("natrouter: ALG queue")
