package scannercli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadFlagsGetClearErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"flood"}, "usage"},
		{[]string{"options"}, "-target"},
		{[]string{"options", "-target", "sbc:5060"}, "-target"},
		{[]string{"options", "-target", "127.0.0.1:5060", "-from", "nowhere"}, "-from"},
		{[]string{"register", "-target", "127.0.0.1:5060"}, "needs a user"},
		{[]string{"options", "-target", "127.0.0.1:5060", "-rate", "0"}, "rate"},
		{[]string{"options", "-target", "127.0.0.1:5060", "extra"}, "unexpected"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}
