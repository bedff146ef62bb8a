package sbccli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siplab/siplab/internal/cli/clitest"
	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/sbc"
)

// Loopback addresses of the sbc package's blocks (127.0.45/46), host .90.
const (
	accessIP = "127.0.45.90"
	coreIP   = "127.0.46.90"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no flags", nil},
		{"no next hop", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0"}},
		{"bad next hop", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "proxy"}},
		{"bad latching", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.10:5060", "-latching", "maybe"}},
		{"bad rtp ports", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.10:5060", "-rtp-ports", "9"}},
		{"stray argument", []string{"-sip", accessIP + ":0", "extra"}},
		{"set without value", []string{"set", "latching"}},
		{"unblock without ip", []string{"unblock"}},
		{"wss on another ip", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.10:5060", "-wss", "127.0.45.91:0"}},
		{"bad ice mode", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.10:5060", "-wss", accessIP + ":0", "-webrtc-ice-mode", "half"}},
		{"ice server without a scheme", []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.10:5060", "-wss", accessIP + ":0", "-webrtc-ice-servers", "stun.example.org:3478"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(context.Background(), tc.args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
				t.Fatalf("got %v, want a usage error", err)
			}
		})
	}
}

// The daemon, with TLS, serves its control socket: status (text and
// JSON), get, set and unblock.
func TestDaemonControl(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sbc.sock")
	runtest.Serve(t, func(ctx context.Context) error {
		return run(ctx, []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.99:5060",
			"-trunk", "127.0.45.91:5060", "-tls", accessIP + ":0", "-tls-dir", filepath.Join(dir, "tls"),
			"-ctl", sock, "-log-level", "error"}, io.Discard, io.Discard)
	})
	var out bytes.Buffer
	st := clitest.WaitStatus[sbc.Status](t, run, sock)
	if !strings.Contains(st.Summary, "0 active call(s)") || st.Settings[sbc.SettingLatching] != "learn" ||
		!strings.HasPrefix(st.AccessTLS, accessIP+":") || st.Trunk != "127.0.45.91:5060" || st.TrunkInbound != "127.0.46.99:5060" {
		t.Fatalf("status: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls", "ca.pem")); err != nil {
		t.Errorf("no lab CA made: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "latching", "off"}, "latching = off"},
		{[]string{"set", "nat-expires", "30s"}, "nat_expires = 30s"},
		{[]string{"get", "latching"}, "off"},
		{[]string{"get", "keepalive_interval"}, "15s"},
		{[]string{"unblock", "127.0.45.77"}, "127.0.45.77 was not blocked"},
	} {
		out.Reset()
		if err := run(context.Background(), append(tc.args, "-ctl", sock), &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("%v printed %q, want %q", tc.args, got, tc.want)
		}
	}
	if err := run(context.Background(), []string{"set", "rport", "on", "-ctl", sock}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("unknown setting: %v", err)
	}
	if err := run(context.Background(), []string{"unblock", "nonsense", "-ctl", sock}, io.Discard, io.Discard); err == nil {
		t.Error("unblock of a non-IP accepted")
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-ctl", sock}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "latching=off") || !strings.Contains(out.String(), "nat_expires=30s") {
		t.Errorf("text status:\n%s", out.String())
	}
}

// The shared capture flags are accepted and validated as usage errors.
func TestCaptureFlags(t *testing.T) {
	err := run(context.Background(), []string{"-sip", accessIP + ":0", "-core-sip", coreIP + ":0", "-next-hop", "127.0.46.99:5060",
		"-capture-dir", t.TempDir(), "-capture-filter", "everything", "-ctl", filepath.Join(t.TempDir(), "s.sock")}, io.Discard, io.Discard)
	if !errors.Is(err, errUsage) {
		t.Fatalf("bad capture filter: %v, want a usage error", err)
	}
}
