package carrier

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// E.164 (ITU-T) numbers as a SIP trunk carries them in the user part:
// "+", country code, national number, at most 15 digits. Fewer than 8
// digits is not a routable public number in the lab (the training page's
// "+1 555 0100" has 11).
const (
	minDigits = 8
	maxDigits = 15
)

// ValidE164 checks that n is "+" followed by 8-15 digits, with no visual
// separators: what arrives in a trunk's Request-URI, normalised.
func ValidE164(n string) error {
	digits, ok := strings.CutPrefix(n, "+")
	if !ok {
		return fmt.Errorf("%w: %q does not start with +", ErrNotE164, n)
	}
	if len(digits) < minDigits || len(digits) > maxDigits {
		return fmt.Errorf("%w: %q has %d digits (want %d-%d)", ErrNotE164, n, len(digits), minDigits, maxDigits)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return fmt.Errorf("%w: %q contains %q", ErrNotE164, n, r)
		}
	}
	return nil
}

// Ranges are the number blocks this carrier terminates, as E.164 prefixes
// ("+1555" = every number starting +1555).
type Ranges []string

// parseRanges checks each prefix: "+" and 1-15 digits.
func parseRanges(in []string) (Ranges, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: no number ranges (e.g. +1555)", ErrConfig)
	}
	out := make(Ranges, 0, len(in))
	for _, r := range in {
		r = strings.TrimSpace(r)
		digits, ok := strings.CutPrefix(r, "+")
		if !ok || digits == "" || len(digits) > maxDigits || strings.Trim(digits, "0123456789") != "" {
			return nil, fmt.Errorf("%w: number range %q: want + and digits, e.g. +1555", ErrConfig, r)
		}
		out = append(out, r)
	}
	return out, nil
}

// Contains says whether the E.164 number n is in one of the ranges.
func (rs Ranges) Contains(n string) bool {
	for _, r := range rs {
		if strings.HasPrefix(n, r) {
			return true
		}
	}
	return false
}

// Screen decides an incoming call by its called number, the way a PSTN
// switch does: a number that cannot be complete is 484 Address Incomplete
// (RFC 3261 §21.4.22, the overlap-dialling answer), a well-formed number
// nobody here holds is 404 Not Found, and one of ours rings (0).
func (rs Ranges) Screen(user string) (int, string) {
	if ValidE164(user) != nil {
		return sip.StatusAddressIncomplete, "Address Incomplete"
	}
	if !rs.Contains(user) {
		return sip.StatusNotFound, "Not Found"
	}
	return 0, ""
}
