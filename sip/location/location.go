// Package location is the contract between whoever stores registrations
// (the registrar) and whoever routes by them (the proxy, the PBX, the SBC).
//
// A binding keeps two views of where a user is: the Contact the phone wrote,
// and the address its REGISTER was actually seen coming from. Which one a
// router uses is a lesson of the lab, so both are always kept.
package location

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrUnknownUser is returned by Lookup for an address-of-record that is not
// provisioned at all (a proxy answers 404), as opposed to a known user with
// no current binding (empty slice, nil error: a proxy answers 480).
var ErrUnknownUser = errors.New("location: unknown user")

// Binding is one registered contact of an address-of-record.
type Binding struct {
	// AOR is the canonical address-of-record, "sip:alice@siplab.test".
	AOR string `json:"aor"`
	// Contact is the Contact header value exactly as the phone wrote it,
	// including display name and parameters.
	Contact string `json:"contact"`
	// ContactURI is the URI inside Contact, e.g. "sip:alice@192.168.1.50:5060".
	ContactURI string `json:"contact_uri"`
	// Source is where the REGISTER was seen coming from on the wire
	// (after any NAT), and Transport the transport it came over ("udp", "tcp", "tls").
	Source    netip.AddrPort `json:"source"`
	Transport string         `json:"transport"`
	// Path is the list of Path header URIs recorded with the binding (RFC 3327).
	Path []string `json:"path,omitempty"`
	// Expires is the absolute expiry time of the binding.
	Expires time.Time `json:"expires"`
	// Q is the contact's q-value (0..1000, in thousandths); 0 means unset.
	Q         int    `json:"q,omitempty"`
	CallID    string `json:"call_id"`
	CSeq      uint32 `json:"cseq"`
	UserAgent string `json:"user_agent,omitempty"`
	// Updated is when the binding was last written.
	Updated time.Time `json:"updated"`
}

// Remaining is how long the binding still lives at now, never negative.
func (b Binding) Remaining(now time.Time) time.Duration {
	if d := b.Expires.Sub(now); d > 0 {
		return d
	}
	return 0
}

// Service answers where a user currently is.
type Service interface {
	// Lookup returns the live bindings of aor (a SIP URI or a bare user
	// name). It returns ErrUnknownUser when the user does not exist.
	Lookup(ctx context.Context, aor string) ([]Binding, error)
}
