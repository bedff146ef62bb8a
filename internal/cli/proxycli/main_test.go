package proxycli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-location", "http://127.0.0.1:1"}, "-sip and -location are required"},
		{[]string{"-sip", "127.0.0.1:0", "-location", "http://x", "-rport", "sometimes"}, "bad setting value"},
		{[]string{"-sip", "127.0.0.1:0", "-location", "http://x", "-contact-fixup", "maybe"}, "bad setting value"},
		{[]string{"-sip", "127.0.0.1:0", "-location", "http://x", "-log-level", "loud"}, "-log-level"},
		{[]string{"-sip", "0.0.0.0:5060", "-location", "http://x", "-ctl", ""}, "specific IP"},
		// A bad user route is refused at start, naming the expression.
		{[]string{"-sip", "127.0.0.1:0", "-location", "http://x", "-route-user", "[0-9=10.0.0.30:5060"}, `user route "[0-9"`},
		{[]string{"-sip", "127.0.0.1:0", "-location", "http://x", "-route-user", "^[0-9]+$"}, "want REGEX=ip:port"},
	}
	for _, tc := range tests {
		err := run(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// The client verbs against a real proxy's control API.
func TestStatusAndSet(t *testing.T) {
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Location: &proxyLocation{}}, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	addr := filepath.Join(t.TempDir(), "proxy.sock")
	stop, err := ctl.Start(addr, p.Handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	var out bytes.Buffer
	if err := run(context.Background(), []string{"set", "rport", "ignore", "-ctl", addr}, &out); err != nil {
		t.Fatal(err)
	}
	if p.Settings().RPort != proxy.RPortIgnore {
		t.Errorf("set did not reach the proxy: %+v", p.Settings())
	}
	err = run(context.Background(), []string{"set", "-ctl", addr, "alg", "on"}, &out)
	if err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("set alg: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-ctl", addr, "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"rport": "ignore"`) {
		t.Errorf("status -json: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-ctl", addr}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "rport          ignore") {
		t.Errorf("status: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"unblock", "203.0.113.66", "-ctl", addr}, &out); err != nil || !strings.Contains(out.String(), `"unblocked": false`) {
		t.Errorf("unblock: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"reset", "-ctl", addr}, &out); err != nil || p.Settings() != proxy.DefaultSettings() {
		t.Errorf("reset: %v %s", err, out.String())
	}
	// No daemon: the error says where it looked.
	err = run(context.Background(), []string{"status", "-ctl", filepath.Join(t.TempDir(), "none.sock")}, &out)
	if !errors.Is(err, ctl.ErrUnavailable) {
		t.Errorf("status without a daemon: %v", err)
	}
}

// proxyLocation knows nobody; the control API test routes no calls.
type proxyLocation struct{}

func (*proxyLocation) Lookup(context.Context, string) ([]location.Binding, error) {
	return nil, location.ErrUnknownUser
}
