package media

import "errors"

var (
	// ErrInvalidConfig wraps every Config problem New reports.
	ErrInvalidConfig = errors.New("media: invalid config")
	// ErrRunning means Run was called on a session that is already running.
	ErrRunning = errors.New("media: session already running")
	// ErrNotRunning means SendDTMF was called outside Run.
	ErrNotRunning = errors.New("media: session not running")
	// ErrClosed means the session was closed.
	ErrClosed = errors.New("media: session closed")
	// ErrNoDTMF means no telephone-event payload type was negotiated.
	ErrNoDTMF = errors.New("media: no telephone-event payload type")
	// ErrBadDigit means a DTMF digit outside 0-9 * # A-D.
	ErrBadDigit = errors.New("media: invalid DTMF digit")
	// ErrNotSending means there is no remote address or sending is disabled (hold).
	ErrNotSending = errors.New("media: not sending (no remote address or send disabled)")
	// ErrNoEvenPort means ListenRTP found no free even port.
	ErrNoEvenPort = errors.New("media: no free even UDP port")
)
