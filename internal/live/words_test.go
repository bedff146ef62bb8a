package live

import (
	"testing"
	"time"
)

func TestOnOff(t *testing.T) {
	words := map[string]bool{
		"on": true, " ON ": true, "yes": true, "1": true, "Enabled": true, "true": true,
		"off": false, "False": false, "no": false, "0": false, "disable": false,
	}
	for in, want := range words {
		got, err := OnOff(in)
		if err != nil || got != want {
			t.Errorf("OnOff(%q) = %v, %v; want %v", in, got, err, want)
		}
		if OnOffWord(got) != map[bool]string{true: "on", false: "off"}[want] {
			t.Errorf("OnOffWord(%v) = %q", got, OnOffWord(got))
		}
	}
	for _, in := range []string{"", "maybe", "2"} {
		if _, err := OnOff(in); err == nil {
			t.Errorf("OnOff(%q) took it", in)
		}
	}
}

func TestSeconds(t *testing.T) {
	durations := map[string]time.Duration{
		"60": time.Minute, " 30s ": 30 * time.Second, "500ms": 500 * time.Millisecond,
		"1m": time.Minute, "0": 0, "OFF": 0,
	}
	for in, want := range durations {
		if got, err := Seconds(in); err != nil || got != want {
			t.Errorf("Seconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-5", "-1s", "soon", ""} {
		if _, err := Seconds(in); err == nil {
			t.Errorf("Seconds(%q) took it", in)
		}
	}
}
