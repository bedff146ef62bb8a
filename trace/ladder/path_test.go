package ladder

import (
	"strings"
	"testing"
)

// The ladder's columns are the path the call takes: the caller, its
// router, the platform nodes in the order the call crosses them, the
// callee's router, the callee. Every SIP arrow joins neighbouring columns
// (one hop on one wire), and an RTP arrow that ends at a phone starts at
// its router: nothing is drawn across a node it passed through.
func TestPathOrder(t *testing.T) {
	for _, tc := range []struct {
		name, fixture, call string
		columns             string
		legs                int
	}{
		{"direct", "edge-direct", "", "alice router-a proxy router-b bob", 1},
		{"pbx", "edge-pbx", "", "alice router-a proxy pbx proxy router-b bob", 2},
		// Both phones on the SBC: four dialogs (the SBC's first core leg
		// is challenged by the proxy and retried with a new Call-ID, so
		// there are two sbc → proxy legs), one ladder.
		{"sbc", "healthy", "6", "alice router-a sbc proxy sbc router-b bob", 4},
		{"sbc and pbx", "healthy", "7", "alice router-a sbc proxy pbx proxy sbc router-b bob", 5},
		// The carrier's leg to the SBC is TLS: the ladder starts at the
		// SBC's core side, where the DID arrives in the clear.
		{"trunk in", "healthy", "8", "sbc pbx proxy sbc router-a alice", 3},
		{"trunk out", "healthy", "9", "bob router-b sbc proxy pbx sbc carrier", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Find(load(t, tc.fixture), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			checkPath(t, c, tc.columns, tc.legs)
		})
	}
}

func checkPath(t *testing.T, c *Call, columns string, legs int) {
	t.Helper()
	var titles []string
	for _, col := range c.Columns {
		titles = append(titles, col.Title())
	}
	if got := strings.Join(titles, " "); got != columns {
		t.Errorf("columns %q, want %q", got, columns)
	}
	if len(c.Legs) != legs {
		t.Errorf("%d legs, want %d: %v", len(c.Legs), legs, c.Legs)
	}
	for i, m := range c.Messages {
		if d := m.To - m.From; d != 1 && d != -1 {
			t.Errorf("message %d %s at %s: arrow %s → %s skips %d column(s)", i+1, m.Label, m.Iface, titles[m.From], titles[m.To], abs(d)-1)
		}
	}
	for _, s := range c.Streams {
		phone := c.Columns[s.From].Host.Role == string(RolePhone) || c.Columns[s.To].Host.Role == string(RolePhone)
		if d := s.To - s.From; phone && d != 1 && d != -1 {
			t.Errorf("RTP at %s: %s → %s skips a column next to a phone", s.Iface, titles[s.From], titles[s.To])
		}
	}
}

// The router shows the translation where it happens: the copy after its
// NAT names the address it changed, and an ALG's rewrite of the SIP text
// is named on that copy too.
func TestTranslationMarked(t *testing.T) {
	c, err := Find(load(t, "edge-direct"), "")
	if err != nil {
		t.Fatal(err)
	}
	var out, in string
	for _, m := range c.Messages {
		if m.Method == "INVITE" && m.Request && m.Iface == "router-a/wan" && out == "" {
			out = m.NAT
		}
		if m.Method == "INVITE" && m.Request && m.Iface == "router-b/lan" && in == "" {
			in = m.NAT
		}
		if m.ALG != "" {
			t.Errorf("%s at %s: ALG %q on a router without one", m.Label, m.Iface, m.ALG)
		}
	}
	if out != "192.168.1.50:5060 ⇒ 203.0.113.2:5060" {
		t.Errorf("alice's INVITE leaving router-a: NAT %q", out)
	}
	if !strings.HasPrefix(in, "to 203.0.113.3:") || !strings.HasSuffix(in, " ⇒ 192.168.2.50:5060") {
		t.Errorf("the INVITE entering bob's LAN: NAT %q", in)
	}
	alg, err := Find(load(t, "alg-rewrite-call-id"), "")
	if err != nil {
		t.Fatal(err)
	}
	marked := false
	for _, m := range alg.Messages {
		if strings.Contains(m.ALG, "Call-ID") && m.Iface == "router-a/wan" {
			marked = true
		}
	}
	if !marked {
		t.Error("the broken ALG's Call-ID rewrite is not marked on router-a/wan")
	}
}
