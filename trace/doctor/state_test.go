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
		{"browser call connected", func(s *LabState) { s.WebRTC = []WebRTCState{webrtcCall("connected", time.Minute, srflxOffer)} }, nil},
		{"browser call still checking, just answered", func(s *LabState) { s.WebRTC = []WebRTCState{webrtcCall("checking", 2*time.Second, srflxOffer)} }, nil},
		{"browser call ICE failed", func(s *LabState) { s.WebRTC = []WebRTCState{webrtcCall("failed", 40*time.Second, srflxOffer)} }, []string{"state-ice"}},
		{"relay-only browser without TURN, stuck in new", func(s *LabState) { s.WebRTC = []WebRTCState{webrtcCall("new", 20*time.Second, nil)} }, []string{"state-ice"}},
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

// srflxOffer is what Chromium behind router-w offers with the lab STUN.
var srflxOffer = []string{
	"1 1 udp 2122260223 192.168.9.10 50000 typ host generation 0",
	"2 1 udp 1686052607 203.0.113.9 50000 typ srflx raddr 192.168.9.10 rport 50000 generation 0",
}

func webrtcCall(ice string, age time.Duration, remote []string) WebRTCState {
	w := WebRTCState{Name: "w1", ICE: ice, Age: age, Remote: remote,
		Local: []string{"1 1 udp 2130706431 203.0.113.5 8443 typ host"}}
	if ice == "connected" {
		w.SelectedPair = "203.0.113.5:8443 <-> 203.0.113.9:50000"
	}
	return w
}

func TestICEFailedSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote []string
		want   string
	}{
		{"no candidates", nil, "no candidate at all"},
		{"host only", srflxOffer[:1], "only host candidates (192.168.9.10:50000)"},
		{"srflx offered", srflxOffer, "2 candidate(s) (1 host, 1 srflx)"},
		{"worked, then the browser left", srflxOffer, "ICE worked (120 packets came from the browser)"},
	} {
		w := webrtcCall("failed", time.Minute, tc.remote)
		if tc.name == "worked, then the browser left" {
			w.FromBrowser = 120
		}
		f := iceFailed(w)
		if len(f) != 1 || !strings.Contains(f[0].Summary, "ICE failed: no usable pair") || !strings.Contains(f[0].Summary, tc.want) {
			t.Errorf("%s: %+v, want a finding saying %q", tc.name, f, tc.want)
		}
	}
}
