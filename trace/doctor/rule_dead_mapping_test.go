package doctor

import (
	"strings"
	"testing"
)

func TestDeadMapping(t *testing.T) {
	routers := []RouterState{{Name: "router-b", WAN: "203.0.113.3", Outside: map[string]bool{"203.0.113.3:5060": true}}}
	tests := []struct {
		name     string
		bindings []BindingState
		routers  []RouterState
		want     []string // users named, in order
	}{
		{"live mapping", []BindingState{{AOR: "sip:bob@siplab.test", Source: "203.0.113.3:5060", Transport: "udp"}}, routers, nil},
		{"flushed: carol's port is gone", []BindingState{
			{AOR: "sip:bob@siplab.test", Source: "203.0.113.3:5060", Transport: "udp"},
			{AOR: "sip:carol@siplab.test", Source: "203.0.113.3:1024", Transport: "udp"},
		}, routers, []string{"carol"}},
		{"behind the SBC: not a router's address", []BindingState{{AOR: "sip:alice@siplab.test", Source: "10.0.0.5:5060", Transport: "udp"}}, routers, nil},
		{"tcp has no pinhole of this kind", []BindingState{{AOR: "sip:carol@siplab.test", Source: "203.0.113.3:1024", Transport: "tcp"}}, routers, nil},
		{"router mappings unknown", []BindingState{{AOR: "sip:carol@siplab.test", Source: "203.0.113.3:1024", Transport: "udp"}},
			[]RouterState{{Name: "router-b", WAN: "203.0.113.3"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckState(LabState{Bindings: tc.bindings, Routers: tc.routers})
			var users []string
			for _, f := range got {
				if f.Rule != "state-dead-mapping" {
					continue
				}
				if f.Severity != Error || len(f.Evidence) != 2 {
					t.Errorf("finding %+v", f)
				}
				users = append(users, strings.Fields(f.Summary)[0])
			}
			if strings.Join(users, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("named %v, want %v", users, tc.want)
			}
		})
	}
}
