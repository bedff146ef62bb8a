package live

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The words below are how an intern types a setting at `siplab set`:
// every daemon takes the same ones, so what works on a phone works on the
// PBX, the SBC and the proxy.

// OnOff reads a switch: on, true, yes, 1, enable(d) or off, false, no, 0,
// disable(d), in any case. The error names the value and what is wanted,
// for the caller to wrap with its own sentinel and setting name.
func OnOff(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "enable", "enabled":
		return true, nil
	case "off", "false", "no", "0", "disable", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%q (want on or off)", v)
}

// OnOffWord is the word OnOff reads back as b.
func OnOffWord(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Seconds reads a duration: a bare number is seconds (that is how SIP
// people think of timers: Expires, keep-alive intervals), else Go's form
// (500ms, 30s, 1m); 0 and off are zero. A negative duration is refused.
func Seconds(v string) (time.Duration, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "off" || v == "0" {
		return 0, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative duration %q", v)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("duration %q (e.g. 60, 30s, 500ms, 1m, off)", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", v)
	}
	return d, nil
}
