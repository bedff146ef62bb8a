package climain

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestExit(t *testing.T) {
	errUsage := errors.New("usage")
	usage := UsageExits2(errUsage)
	cases := []struct {
		name   string
		rules  Rules
		err    error
		code   int
		stderr string
	}{
		{"success", Rules{Name: "b2bua", Code: usage}, nil, 0, ""},
		{"help", Rules{Name: "b2bua", Code: usage}, fmt.Errorf("serve: %w", flag.ErrHelp), 0, ""},
		{"usage", Rules{Name: "b2bua", Code: usage}, fmt.Errorf("%w: no -sip", errUsage), 2, "b2bua: usage: no -sip\n"},
		{"failure", Rules{Name: "sbc", Code: usage}, errors.New("bind: in use"), 1, "sbc: bind: in use\n"},
		{"no code rule", Rules{Name: "proxy"}, errors.New("boom"), 1, "proxy: boom\n"},
		{"always 2", Rules{Name: "scanner", Code: Always(2)}, errors.New("no answer"), 2, "scanner: no answer\n"},
		{"already named", Rules{Name: "natrouter", Prefixed: "natrouter:", Code: usage}, errors.New("natrouter: nft: denied"), 1, "natrouter: nft: denied\n"},
		{"not named", Rules{Name: "natrouter", Prefixed: "natrouter:", Code: usage}, fmt.Errorf("%w: no command", errUsage), 2, "natrouter: usage: no command\n"},
		{"named without Prefixed", Rules{Name: "b2bua"}, errors.New("b2bua: x"), 1, "b2bua: b2bua: x\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if code := Exit(tc.rules, tc.err, &buf); code != tc.code {
				t.Errorf("code %d, want %d", code, tc.code)
			}
			if buf.String() != tc.stderr {
				t.Errorf("stderr %q, want %q", buf.String(), tc.stderr)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		pos     string
		ctl     string
		wantErr bool
	}{
		{nil, "", "def", false},
		{[]string{"set", "latching", "off"}, "set,latching,off", "def", false},
		{[]string{"set", "-ctl", "x", "latching", "off"}, "set,latching,off", "x", false},
		{[]string{"latching", "off", "-ctl", "y"}, "latching,off", "y", false},
		{[]string{"off", "-nope"}, "off", "def", true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		ctl := fs.String("ctl", "def", "")
		pos, err := ParseInterspersed(fs, tt.args)
		if (err != nil) != tt.wantErr || strings.Join(pos, ",") != tt.pos || *ctl != tt.ctl {
			t.Errorf("%q: pos %q ctl %q err %v; want %q %q err=%v", tt.args, pos, *ctl, err, tt.pos, tt.ctl, tt.wantErr)
		}
	}
}
