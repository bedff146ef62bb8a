package sbc

import "errors"

var (
	// ErrConfig wraps every Config problem New reports.
	ErrConfig = errors.New("sbc: invalid config")
	// ErrUnknownSetting: Set/Get with a name that is not a live setting.
	ErrUnknownSetting = errors.New("sbc: unknown setting")
	// ErrBadValue: a live setting value that does not parse.
	ErrBadValue = errors.New("sbc: bad setting value")
	// ErrBadSDP: a body the SBC cannot point at its media relay.
	ErrBadSDP = errors.New("sbc: unusable SDP")
	// ErrClosed: the SBC is shutting down.
	ErrClosed = errors.New("sbc: closed")
)
