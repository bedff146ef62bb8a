package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

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
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	tests := []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"PUT", "/v1/settings/rport", "ignore", 200, `"rport": "ignore"`},
		{"PUT", "/v1/settings/record_route", `false`, 200, `"record_route": false`},
		{"PUT", "/v1/settings/contact_fixup", `"off"`, 200, `"contact_fixup": "off"`},
		{"PUT", "/v1/settings/contact_fixup", `auto`, 200, `"contact_fixup": "auto"`},
		{"PUT", "/v1/settings/rport", "sideways", 400, `"error"`},
		{"PUT", "/v1/settings/alg", "on", 404, `unknown setting`},
		{"GET", "/v1/settings", "", 200, `"rport": "ignore"`},
		{"GET", "/v1/status", "", 200, `"registrar": "127.0.0.1:5070"`},
	}
	for _, tc := range tests {
		code, body := do(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s %q: %d %s; want %d containing %s", tc.method, tc.path, tc.body, code, body, tc.code, tc.contains)
		}
	}
	var st Status
	_, body := do("GET", "/v1/status", "")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Settings.RPort != RPortIgnore || st.Settings.RecordRoute || len(st.Listen) != 1 {
		t.Errorf("status %+v", st)
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
