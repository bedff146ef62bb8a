package main

import "testing"

func TestParseMessageRef(t *testing.T) {
	for _, tc := range []struct {
		in        string
		call, msg int
		ok        bool
	}{
		{"3.2", 3, 2, true},
		{"12.40", 12, 40, true},
		{"22", 0, 0, false}, // ambiguous: never guessed
		{"0.1", 0, 0, false},
		{"1.0", 0, 0, false},
		{"a.b", 0, 0, false},
		{"3.", 0, 0, false},
		{".2", 0, 0, false},
	} {
		c, m, err := parseMessageRef(tc.in)
		if (err == nil) != tc.ok || c != tc.call || m != tc.msg {
			t.Errorf("parseMessageRef(%q) = %d, %d, %v", tc.in, c, m, err)
		}
	}
}
