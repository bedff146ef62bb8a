package climain

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
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
