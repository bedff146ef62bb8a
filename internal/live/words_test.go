package live

import (
	"testing"
	"time"
)

func TestOnOff(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		ok   bool
	}{
		{"on", true, true}, {" ON ", true, true}, {"yes", true, true}, {"1", true, true}, {"Enabled", true, true},
		{"off", false, true}, {"False", false, true}, {"no", false, true}, {"0", false, true}, {"disable", false, true},
		{"", false, false}, {"maybe", false, false}, {"2", false, false},
	} {
		got, err := OnOff(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("OnOff(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err == nil && OnOffWord(got) != map[bool]string{true: "on", false: "off"}[tc.want] {
			t.Errorf("OnOffWord(%v) = %q", got, OnOffWord(got))
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"60", time.Minute, true}, {" 30s ", 30 * time.Second, true}, {"500ms", 500 * time.Millisecond, true},
		{"1m", time.Minute, true}, {"0", 0, true}, {"OFF", 0, true},
		{"-5", 0, false}, {"-1s", 0, false}, {"soon", 0, false}, {"", 0, false},
	} {
		got, err := Seconds(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Seconds(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
