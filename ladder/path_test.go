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
		{"sbc", "healthy", "5", "alice router-a sbc proxy sbc router-b bob", 4},
		{"sbc and pbx", "healthy", "6", "alice router-a sbc proxy pbx proxy sbc router-b bob", 5},
		// The carrier's leg to the SBC is TLS: the ladder starts at the
		// SBC's core side, where the DID arrives in the clear.
		{"trunk in", "healthy", "7", "sbc pbx proxy sbc router-a alice", 3},
		{"trunk out", "healthy", "8", "bob router-b sbc proxy pbx sbc carrier", 5},
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
