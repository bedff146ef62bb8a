package b2bua

import "errors"

var (
	// ErrNoLocation is a Config without a location service: the PBX cannot
	// find any phone.
	ErrNoLocation = errors.New("b2bua: location service is required")
	// ErrNoDialPlan is a Config without a dial plan.
	ErrNoDialPlan = errors.New("b2bua: dial plan is required")
	// ErrDialPlan wraps every dial plan syntax error, naming the line.
	ErrDialPlan = errors.New("b2bua: bad dial plan")
	// ErrConfig wraps every other Config problem.
	ErrConfig = errors.New("b2bua: bad config")
	// ErrUnknownSetting is a live setting name that does not exist.
	ErrUnknownSetting = errors.New("b2bua: unknown setting")
	// ErrBadValue is a live setting value that does not parse.
	ErrBadValue = errors.New("b2bua: bad setting value")
	// ErrBadSDP is an SDP body the PBX cannot rewrite or answer.
	ErrBadSDP = errors.New("b2bua: bad SDP")
	// ErrClosed is returned for work after Close.
	ErrClosed = errors.New("b2bua: closed")
)

// ErrNotRegistered means a user has no live binding.
var ErrNotRegistered = errors.New("b2bua: user not registered")
