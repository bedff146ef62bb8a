package doctor

import (
	"strings"
	"testing"
	"time"
)

func TestStateRules(t *testing.T) {
	good := func() LabState {
		return LabState{
			ProxyAddr: "203.0.113.10:5060", ProxyRport: "honour",
			SBCAddr: "203.0.113.5:5060", SBCKeepalive: 15 * time.Second,
			Routers: []RouterState{{Name: "router-b", Pinhole: 2 * time.Minute, ALG: "off"}},
			Phones: []PhoneState{{Name: "bob", Router: "router-b", RegState: "registered",
				Settings: map[string]string{"proxy": "203.0.113.10:5060", "rport": "on", "keepalive": "crlf", "keepalive_interval": "20s"}}},
		}
	}
	tests := []struct {
		name   string
		change func(*LabState)
		rules  []string
	}{
		{"the lab's defaults", func(*LabState) {}, nil},
		{"keep-alives off", func(s *LabState) { s.Phones[0].Settings["keepalive"] = "off" }, []string{"state-pinhole"}},
		{"pinhole shorter than the keep-alive interval", func(s *LabState) { s.Routers[0].Pinhole = 10 * time.Second }, []string{"state-pinhole"}},
		{"keep-alives off behind the SBC's pings", func(s *LabState) {
			s.Phones[0].Settings["keepalive"] = "off"
			s.Phones[0].Settings["proxy"] = s.SBCAddr
		}, nil},
		{"keep-alives off, SBC pings off", func(s *LabState) {
			s.Phones[0].Settings["keepalive"] = "off"
			s.Phones[0].Settings["proxy"] = s.SBCAddr
			s.SBCKeepalive = 0
		}, []string{"state-pinhole"}},
		{"no rport, proxy honours only", func(s *LabState) { s.Phones[0].Settings["rport"] = "off" }, []string{"state-via"}},
		{"no rport, proxy forces", func(s *LabState) { s.Phones[0].Settings["rport"] = "off"; s.ProxyRport = "force" }, nil},
		{"no rport behind the SBC", func(s *LabState) {
			s.Phones[0].Settings["rport"] = "off"
			s.Phones[0].Settings["proxy"] = s.SBCAddr
		}, nil},
		{"not registered", func(s *LabState) {
			s.Phones[0].RegState = "failed"
			s.Phones[0].RegError = "wrong credentials (401 again)"
		}, []string{"state-registration"}},
		{"ALG on", func(s *LabState) { s.Routers[0].ALG = "broken:wrong-port" }, []string{"state-alg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good()
			tt.change(&st)
			var got []string
			for _, f := range CheckState(st) {
				got = append(got, f.Rule)
				if len(f.Evidence) == 0 || f.Fix == "" {
					t.Errorf("%s: finding without evidence or fix: %+v", f.Rule, f)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.rules, ",") {
				t.Errorf("rules %v, want %v", got, tt.rules)
			}
		})
	}
}
