package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/siplab/siplab/lab/labctl"
)

// The details sections read each daemon's own status document: a field
// renamed in a daemon must break this test, not silently empty a section.
func TestStatusDetailsReadTheDaemonsDocuments(t *testing.T) {
	docs := []struct{ role, doc string }{
		{"registrar", `{"registrations":[{"aor":"sip:alice@siplab.test","contact_uri":"sip:alice@192.168.1.50:5060","source":"203.0.113.2:5060","transport":"udp"}]}`},
		{"sbc", `{"registrations":[{"aor":"sip:bob@siplab.test","contact":"<sip:bob@192.168.2.50:5060>","latched":"203.0.113.3:5060","transport":"udp","nated":true,"expires_in":42,"pings_sent":3,"pings_answered":2}],
		         "blocked":[{"source":"203.0.113.66","reason":"failed auth","until":"2026-11-25T22:00:00Z","hits":17}]}`},
		{"registrar", `{"blocked":[{"source":"203.0.113.67","reason":"failed_auth: 10 in 1m0s","until":"2026-11-25T22:01:00Z","hits":3}]}`},
		{"proxy", `{"guard":{"blocked":[{"source":"203.0.113.68","reason":"failed_auth: 10 in 1m0s","until":"2026-11-25T22:02:00Z","hits":5}]}}`},
		{"router", `{"mappings":[{"proto":"udp","inside":"192.168.1.50:5060","outside":"203.0.113.2:5060","remote":"203.0.113.10:5060","packets_out":4,"packets_in":3}]}`},
	}
	var all []nodeStatus
	for _, d := range docs {
		all = append(all, nodeStatus{Node: labctl.Node{Name: d.role, Role: d.role}, Daemon: json.RawMessage(d.doc)})
	}
	var out bytes.Buffer
	writeDetails(&out, all)
	for _, want := range []string{
		"REGISTRATIONS", "203.0.113.2:5060/udp",
		"SBC REGISTRATIONS", "203.0.113.3:5060/udp", "42s", "2/3",
		"BLOCKED SOURCES", "203.0.113.66", "failed auth", "17", "203.0.113.67", "203.0.113.68", "failed_auth: 10 in 1m0s",
		"NAT MAPPINGS", "192.168.1.50:5060",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("details lack %q:\n%s", want, out.String())
		}
	}
}
