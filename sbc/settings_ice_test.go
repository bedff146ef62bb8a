package sbc

import (
	"errors"
	"testing"
)

func TestSettingWebRTCICEServers(t *testing.T) {
	for _, tc := range []struct {
		value, get string
		n          int
		bad        bool
	}{
		{"stun:203.0.113.20:3478,turn:203.0.113.20:3478", "stun:203.0.113.20:3478,turn:203.0.113.20:3478", 2, false},
		{" stun:203.0.113.21:3478 ", "stun:203.0.113.21:3478", 1, false},
		{"none", "none", 0, false},
		{"", "none", 0, false},
		{"stun.example.org:3478", "", 0, true},      // no scheme
		{"turns:203.0.113.20:5349", "", 0, true},    // TLS TURN: the lab has none
		{"stun:stun.example.org:3478", "", 0, true}, // a name: never a public server
		{"stun:203.0.113.20:3478,", "", 0, true},    // empty entry
		{"turn:203.0.113.20", "", 0, true},          // no port
	} {
		s := DefaultSettings()
		err := s.Set(SettingWebRTCICEServers, tc.value)
		if tc.bad {
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("%q: err %v, want ErrBadValue", tc.value, err)
			}
			if s != DefaultSettings() {
				t.Errorf("%q: a bad value changed the settings", tc.value)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if got, _ := s.Get(SettingWebRTCICEServers); got != tc.get {
			t.Errorf("%q: get %q, want %q", tc.value, got, tc.get)
		}
		if got := len(s.ICEServers()); got != tc.n {
			t.Errorf("%q: %d servers, want %d", tc.value, got, tc.n)
		}
	}
}
