package proxycli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/siplab/siplab/location"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sipnet"
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
		{[]string{"-sip", "0.0.0.0:5060", "-location", "http://x", "-http", ""}, "specific IP"},
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
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"set", "rport", "ignore", "-http", addr}, &out); err != nil {
		t.Fatal(err)
	}
	if p.Settings().RPort != proxy.RPortIgnore {
		t.Errorf("set did not reach the proxy: %+v", p.Settings())
	}
	err = run(context.Background(), []string{"set", "-http", addr, "alg", "on"}, &out)
	if err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("set alg: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-http", addr, "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"rport": "ignore"`) {
		t.Errorf("status -json: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-http", addr}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "rport          ignore") {
		t.Errorf("status: %s", out.String())
	}
}

// proxyLocation knows nobody; the control API test routes no calls.
type proxyLocation struct{}

func (*proxyLocation) Lookup(context.Context, string) ([]location.Binding, error) {
	return nil, location.ErrUnknownUser
}
