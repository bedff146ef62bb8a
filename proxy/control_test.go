package proxy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/internal/torturetest"
)

func TestSettingsSet(t *testing.T) {
	tests := []struct {
		name, value string
		want        func(Settings) bool
		err         error
	}{
		{"rport", "ignore", func(s Settings) bool { return s.RPort == RPortIgnore }, nil},
		{"rport", "Honor", func(s Settings) bool { return s.RPort == RPortHonour }, nil},
		{"rport", "force", func(s Settings) bool { return s.RPort == RPortForce }, nil},
		{"rport", "sometimes", nil, ErrBadSettingValue},
		{"received", "off", func(s Settings) bool { return !s.Received }, nil},
		{"contact_fixup", "0", func(s Settings) bool { return s.ContactFixup == FixupOff }, nil},
		{"contact-fixup", "yes", func(s Settings) bool { return s.ContactFixup == FixupOn }, nil},
		{"contact_fixup", "AUTO", func(s Settings) bool { return s.ContactFixup == FixupAuto }, nil},
		{"contact_fixup", "sometimes", nil, ErrBadSettingValue},
		{"record_route", "false", func(s Settings) bool { return !s.RecordRoute }, nil},
		{"record_route", "maybe", nil, ErrBadSettingValue},
		{"symmetric_rtp", "on", nil, ErrUnknownSetting},
	}
	for _, tc := range tests {
		s := DefaultSettings()
		err := s.Set(tc.name, tc.value)
		if !errors.Is(err, tc.err) {
			t.Errorf("Set(%q, %q) = %v, want %v", tc.name, tc.value, err, tc.err)
			continue
		}
		if err != nil {
			if s != DefaultSettings() {
				t.Errorf("Set(%q, %q) failed but changed settings to %+v", tc.name, tc.value, s)
			}
			continue
		}
		if !tc.want(s) {
			t.Errorf("Set(%q, %q) gave %+v", tc.name, tc.value, s)
		}
		if v, err := s.Get(tc.name); err != nil || v == "" {
			t.Errorf("Get(%q) = %q, %v", tc.name, v, err)
		}
	}
}

func TestUpdateRejectsInvalid(t *testing.T) {
	p, _ := startProxy(t, Config{Location: newMemLocation()})
	if _, err := p.Update(func(s *Settings) { s.RPort = "bogus"; s.Received = false }); !errors.Is(err, ErrBadSettingValue) {
		t.Fatalf("Update with a bad rport: %v", err)
	}
	if p.Settings() != DefaultSettings() {
		t.Errorf("a rejected Update changed the settings: %+v", p.Settings())
	}
}

func TestControlAPI(t *testing.T) {
	p, _ := startProxy(t, Config{Location: newMemLocation(), Registrar: "127.0.0.1:5070"})
	do := serveControl(t, p)
	tests := []struct {
		path     string
		in       any
		code     int
		contains string
	}{
		{"/set", ctl.SetRequest{Name: "rport", Value: "ignore"}, 200, `"rport": "ignore"`},
		{"/set", ctl.SetRequest{Name: "record_route", Value: "false"}, 200, `"record_route": false`},
		{"/set", ctl.SetRequest{Name: "contact_fixup", Value: "off"}, 200, `"contact_fixup": "off"`},
		{"/set", ctl.SetRequest{Name: "contact_fixup", Value: " auto"}, 200, `"contact_fixup": "auto"`},
		{"/set", ctl.SetRequest{Name: "rport", Value: "sideways"}, 400, `sideways`},
		{"/set", ctl.SetRequest{Name: "alg", Value: "on"}, 404, `unknown setting`},
		{"/set", map[string]string{"name": "rport", "valeu": "force"}, 400, `unknown field`},
		{"/settings", nil, 200, `"rport": "ignore"`},
		{"/status", nil, 200, `"registrar": "127.0.0.1:5070"`},
	}
	for _, tc := range tests {
		code, body := do(tc.path, tc.in)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %+v: %d %s; want %d containing %s", tc.path, tc.in, code, body, tc.code, tc.contains)
		}
	}
	var st Status
	_, body := do("/status", nil)
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Settings.RPort != RPortIgnore || st.Settings.RecordRoute || len(st.Listen) != 1 {
		t.Errorf("status %+v", st)
	}
	code, body := do("/reset", struct{}{})
	var rr ResetResult
	if err := json.Unmarshal([]byte(body), &rr); code != 200 || err != nil || rr.Settings != DefaultSettings() || len(rr.Restored) != 2 { // rport and record_route; contact_fixup is back at auto
		t.Errorf("reset: %d %s", code, body)
	}
}

// The proxy's answer to each RFC 4475 message over real sockets: the
// invalid ones refused with a reason naming the bad part, the valid ones
// processed, the responses unanswered; it still answers afterwards.
func TestTortureMessages(t *testing.T) {
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		_, px := startProxy(t, Config{Location: newMemLocation("alice", "bob")})
		return px
	}, torturetest.Proxy)
}
