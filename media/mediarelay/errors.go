package mediarelay

import "errors"

var (
	// ErrInvalidConfig wraps every Config problem New reports.
	ErrInvalidConfig = errors.New("mediarelay: invalid config")
	// ErrBadLatching is what ParseLatching returns for an unknown mode.
	ErrBadLatching = errors.New("mediarelay: unknown latching mode")
	// ErrNoPorts means no even/odd port pair was free in the port range.
	ErrNoPorts = errors.New("mediarelay: no free RTP/RTCP port pair")
)
