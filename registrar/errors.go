package registrar

import "errors"

var (
	// ErrNoDomain is a Config with neither Domain nor Realm.
	ErrNoDomain = errors.New("registrar: domain is required")
	// ErrNoUsers is a Config without users (and without an Authenticator).
	ErrNoUsers = errors.New("registrar: users are required")
	// ErrBadExpires is an inconsistent Min/Max/DefaultExpires.
	ErrBadExpires = errors.New("registrar: bad expires limits")
	// ErrCorruptJournal is a journal record that fails its checksum or does
	// not decode and is followed by good records: not a torn tail left by a
	// crash but damage, which the registrar refuses to paper over.
	ErrCorruptJournal = errors.New("registrar: corrupt journal")
	// ErrCorruptSnapshot is a snapshot file that does not decode.
	ErrCorruptSnapshot = errors.New("registrar: corrupt snapshot")
	// ErrClosed is returned for work submitted after Close.
	ErrClosed = errors.New("registrar: closed")
	// ErrUnknownSetting is a live setting name the registrar does not have.
	ErrUnknownSetting = errors.New("registrar: unknown setting")
	// ErrBadSetting is a value a live setting refuses.
	ErrBadSetting = errors.New("registrar: bad setting value")
)
