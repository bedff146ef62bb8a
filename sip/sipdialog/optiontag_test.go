package sipdialog

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestHasOptionTag(t *testing.T) {
	tests := []struct {
		name    string
		headers []string // values of Supported, one header each
		tag     string
		want    bool
	}{
		{"absent header", nil, "100rel", false},
		{"alone", []string{"100rel"}, "100rel", true},
		{"in a list with spaces", []string{"timer, 100rel ,replaces"}, "100rel", true},
		{"case-insensitive", []string{"100REL"}, "100rel", true},
		{"second instance", []string{"timer", "replaces, 100rel"}, "100rel", true},
		{"prefix is not a match", []string{"100relx, timer"}, "100rel", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, sip.Uri{User: "bob", Host: "siplab.test"})
			for _, v := range tc.headers {
				req.AppendHeader(sip.NewHeader("Supported", v))
			}
			if got := HasOptionTag(req, "Supported", tc.tag); got != tc.want {
				t.Errorf("HasOptionTag(%q, %q) = %v, want %v", tc.headers, tc.tag, got, tc.want)
			}
		})
	}
}
