package uaclient

import (
	"errors"
	"fmt"
)

var (
	// ErrConfig wraps every configuration problem found by New.
	ErrConfig = errors.New("uaclient: bad configuration")
	// ErrNoProxy means a request needs the SIP server / outbound proxy and
	// none is configured.
	ErrNoProxy = errors.New("uaclient: no proxy configured")
	// ErrUnknownSetting and ErrBadValue are returned by Set.
	ErrUnknownSetting = errors.New("uaclient: unknown setting")
	ErrBadValue       = errors.New("uaclient: bad value")
	// ErrWrongCredentials means the server challenged again after we
	// answered its challenge: the password (or user) is wrong.
	ErrWrongCredentials = errors.New("uaclient: wrong credentials")
	// ErrForbidden is a 403: the credentials were fine but policy refuses.
	ErrForbidden = errors.New("uaclient: forbidden by policy (403)")
	// ErrNoCredentials means a server challenged and no password is set.
	ErrNoCredentials = errors.New("uaclient: server asks for credentials and none are configured")
	// ErrRejected wraps any other final failure response.
	ErrRejected = errors.New("uaclient: request rejected")
	// ErrTimeout means no final response arrived (Timer B/F or transport error).
	ErrTimeout = errors.New("uaclient: no response (timeout)")
	// ErrNoSuchCall means a command named a call the phone does not know,
	// or named none and no call fits.
	ErrNoSuchCall = errors.New("uaclient: no such call")
	// ErrCallState means a command does not fit the call's state
	// (answering an outgoing call, cancelling a confirmed one, ...).
	ErrCallState = errors.New("uaclient: not possible in this call state")
	// ErrBadTarget means a call/options target cannot be turned into a SIP URI.
	ErrBadTarget = errors.New("uaclient: bad target")
	// ErrBadDigits means DTMF digits outside 0-9 * # A-D.
	ErrBadDigits = errors.New("uaclient: bad DTMF digits")
	// ErrNoDTMF means the call did not negotiate telephone-event.
	ErrNoDTMF = errors.New("uaclient: telephone-event not negotiated on this call")
	// ErrClosed means the phone was closed.
	ErrClosed = errors.New("uaclient: phone closed")
	// ErrNoMedia means the call has no running media session.
	ErrNoMedia = errors.New("uaclient: no media on this call")
)

// ResponseError is a final response that ended a request: its code and
// reason are kept so a caller can print "486 Busy Here".
type ResponseError struct {
	Code   int
	Reason string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("uaclient: %d %s", e.Code, e.Reason)
}

func (e *ResponseError) Unwrap() error { return ErrRejected }
