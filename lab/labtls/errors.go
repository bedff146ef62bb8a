package labtls

import "errors"

var (
	// ErrCorrupt: a file in the certificate directory is there but is not
	// what it should be (not PEM, wrong type, key not matching). It is never
	// overwritten: it may be someone's own certificate.
	ErrCorrupt = errors.New("labtls: unusable certificate file")
	// ErrCAExpired: the lab CA is past its validity; remove the directory
	// to start a new one (every client must then get the new ca.pem).
	ErrCAExpired = errors.New("labtls: lab CA expired")
	// ErrNoHosts: a server certificate needs at least one IP to name.
	ErrNoHosts = errors.New("labtls: no host addresses for the server certificate")
	// ErrWaitCA: the CA file did not appear in time.
	ErrWaitCA = errors.New("labtls: CA file did not appear")
)
