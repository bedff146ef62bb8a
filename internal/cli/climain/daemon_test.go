package climain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger("warn", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "shown") {
		t.Errorf("log at warn wrote %q", got)
	}
	if _, err := NewLogger("loud", io.Discard); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("bad level: err = %v", err)
	}
}

func TestDispatch(t *testing.T) {
	var ran string
	verb := func(name string) Verb {
		return func(_ context.Context, args []string, _ io.Writer) error {
			ran = name + " " + strings.Join(args, " ")
			return nil
		}
	}
	verbs := map[string]Verb{"status": verb("status"), "set": verb("set")}
	serve := func(_ context.Context, args []string) error {
		ran = "serve " + strings.Join(args, " ")
		return errors.New("served")
	}
	for _, tc := range []struct {
		args []string
		want string
		err  bool
	}{
		{[]string{"set", "latch", "off"}, "set latch off", false},
		{[]string{"status"}, "status ", false},
		{[]string{"-sip", "1.2.3.4:5060"}, "serve -sip 1.2.3.4:5060", true},
		{nil, "serve ", true},
	} {
		ran = ""
		err := Dispatch(context.Background(), tc.args, io.Discard, verbs, serve)
		if ran != tc.want || (err != nil) != tc.err {
			t.Errorf("%q: ran %q err %v, want %q", tc.args, ran, err, tc.want)
		}
	}
}

func TestClientFlagsInterspersed(t *testing.T) {
	t.Setenv("X_CTL", "/env.sock")
	sock, asJSON, pos, err := ClientFlags("x set", "X_CTL", "/def.sock", []string{"latch", "-json", "off"}, io.Discard)
	if err != nil || sock != "/env.sock" || !asJSON || strings.Join(pos, " ") != "latch off" {
		t.Errorf("got %q %v %q %v", sock, asJSON, pos, err)
	}
	sock, _, _, _ = ClientFlags("x set", "X_UNSET_CTL", "/def.sock", []string{"-ctl", "/flag.sock"}, io.Discard)
	if sock != "/flag.sock" {
		t.Errorf("-ctl: got %q", sock)
	}
}
