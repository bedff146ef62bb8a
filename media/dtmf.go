package media

import (
	"fmt"
	"strings"
)

// RFC 4733 §3.2 event codes for DTMF.
const dtmfSymbols = "0123456789*#ABCD"

// eventForDigit maps a DTMF character to its RFC 4733 event code.
func eventForDigit(r rune) (uint8, bool) {
	i := strings.IndexRune(dtmfSymbols, r)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}

// digitForEvent maps an event code to its character; 16 is hook flash,
// anything else an event this lab does not name.
func digitForEvent(e uint8) byte {
	switch {
	case int(e) < len(dtmfSymbols):
		return dtmfSymbols[e]
	case e == 16:
		return 'F'
	}
	return '?'
}

// normalizeDigits upper-cases a-d and rejects anything not DTMF.
func normalizeDigits(digits string) ([]uint8, error) {
	if digits == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadDigit)
	}
	events := make([]uint8, 0, len(digits))
	for _, r := range strings.ToUpper(digits) {
		e, ok := eventForDigit(r)
		if !ok {
			return nil, fmt.Errorf("%w %q in %q", ErrBadDigit, r, digits)
		}
		events = append(events, e)
	}
	return events, nil
}

// dtmfVolume is the power level written in events: -10 dBm0, a normal level.
const dtmfVolume = 10

// putEvent writes the 4-byte RFC 4733 §2.3 payload.
func putEvent(b []byte, event uint8, end bool, duration uint16) []byte {
	flags := byte(dtmfVolume)
	if end {
		flags |= 0x80
	}
	return append(b, event, flags, byte(duration>>8), byte(duration))
}
