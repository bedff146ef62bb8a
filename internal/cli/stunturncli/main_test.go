package stunturncli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/stunturn"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(*options) bool
		err   string // substring of the error; "" = accepted
	}{
		{"defaults", []string{"-listen", "127.0.34.1:3478", "-users", "u"}, func(o *options) bool {
			return o.relayIP == netip.MustParseAddr("127.0.34.1") && o.portMin == 40000 && o.portMax == 40999 && o.realm == "siplab.test"
		}, ""},
		{"lab", []string{"-listen", "0.0.0.0:3478", "-relay-ip", "203.0.113.20", "-relay-ports", "40000-40099", "-users", "u"}, func(o *options) bool {
			return o.relayIP == netip.MustParseAddr("203.0.113.20") && o.portMax == 40099
		}, ""},
		{"no listen", []string{"-users", "u"}, nil, "-listen"},
		{"listen no port", []string{"-listen", "127.0.0.1", "-users", "u"}, nil, "want ip:port"},
		{"unspecified without relay ip", []string{"-listen", "0.0.0.0:3478", "-users", "u"}, nil, "-relay-ip"},
		{"no users", []string{"-listen", "127.0.0.1:3478"}, nil, "-users"},
		{"bad relay ip", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-relay-ip", "turn.example"}, nil, "not an IP"},
		{"bad range", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-relay-ports", "5000-4000"}, nil, "min-max"},
		{"range not numbers", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-relay-ports", "lots"}, nil, "min-max"},
		{"range port 0", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-relay-ports", "0-10"}, nil, "min-max"},
		{"zero quota", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-user-quota", "0"}, nil, "-user-quota"},
		{"tiny lifetime", []string{"-listen", "127.0.0.1:3478", "-users", "u", "-max-lifetime", "10ms"}, nil, "-max-lifetime"},
		{"extra args", []string{"-listen", "127.0.0.1:3478", "-users", "u", "extra"}, nil, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.err != "" {
				if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want a usage error mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.check(o) {
				t.Fatalf("err %v, options %+v", err, o)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestDispatchErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}} {
		if err := dispatch(context.Background(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v", args, err)
		}
	}
	if err := dispatch(context.Background(), []string{"run", "-listen", "127.0.34.1:0", "-users", "/nonexistent/users"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "users") {
		t.Errorf("missing users file: %v", err)
	}
	err := dispatch(context.Background(), []string{"status", "-ctl", filepath.Join(t.TempDir(), "none.sock")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "status") {
		t.Errorf("status without daemon: %v", err)
	}
}

// TestDaemonStatus runs the daemon as main does, sends it a Binding request
// and reads `stunturn status` (text and JSON) over the control socket.
func TestDaemonStatus(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice alice-secret\n"), 0o600)
	sock := filepath.Join(dir, "stunturn.sock")
	srv, stop := runtest.Start(t, func(ctx context.Context, ready func(*stunturn.Server)) error {
		return runDaemon(ctx, []string{"-listen", "127.0.34.1:0", "-relay-ports", "41100-41199",
			"-users", users, "-ctl", sock, "-log-level", "warn"}, io.Discard, ready)
	})
	ctx := context.Background()
	c, err := net.ListenPacket("udp", "127.0.34.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mapped, err := stunturn.Binding(ctx, c, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := dispatch(ctx, []string{"status", "-ctl", sock}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "told mapped "+mapped.String()) {
		t.Fatalf("status:\n%s", out.String())
	}
	out.Reset()
	if err := dispatch(ctx, []string{"status", "-ctl", sock, "-json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"binding_requests": 1`) {
		t.Fatalf("json status:\n%s", out.String())
	}
	stop()
}
