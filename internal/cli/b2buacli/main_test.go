package b2buacli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/internal/cli/clitest"
	"github.com/siplab/siplab/internal/runtest"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan")
	if err := os.WriteFile(plan, []byte("100 alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"no flags", nil, errUsage},
		{"no dial plan", []string{"-sip", "127.0.9.31:0", "-location", "http://127.0.9.20:1"}, errUsage},
		{"bad setting", []string{"-sip", "127.0.9.31:0", "-location", "http://x", "-dialplan", plan, "-moh", "loud"}, errUsage},
		{"stray argument", []string{"-sip", "127.0.9.31:0", "extra"}, errUsage},
		{"set without value", []string{"set", "moh"}, errUsage},
		{"missing plan file", []string{"-sip", "127.0.9.31:0", "-location", "http://x", "-dialplan", filepath.Join(dir, "nope")}, b2bua.ErrDialPlan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// The daemon serves its control socket: status (text and JSON with a
// summary) and set change a live toggle.
func TestDaemonStatusAndSet(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan")
	if err := os.WriteFile(plan, []byte("100 alice\n*97 voicemail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "b2bua.sock")
	runtest.Serve(t, func(ctx context.Context) error {
		return run(ctx, []string{"-sip", "127.0.9.31:0", "-location", "http://127.0.9.20:1", "-dialplan", plan,
			"-ctl", sock, "-log-level", "error"}, io.Discard, io.Discard)
	})
	var out bytes.Buffer
	st := clitest.WaitStatus[b2bua.Status](t, run, sock)
	if !strings.Contains(st.Summary, "0 active call(s)") || !st.Settings.MediaAnchor {
		t.Fatalf("status: %+v", st)
	}

	if err := run(context.Background(), []string{"set", "media_anchor", "off", "-ctl", sock}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "media_anchor = off" {
		t.Fatalf("set printed %q", out.String())
	}
	if err := run(context.Background(), []string{"set", "rport", "on", "-ctl", sock}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "unknown setting") {
		t.Fatalf("unknown setting: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "-ctl", sock}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "media direct") || !strings.Contains(out.String(), "media_anchor=off") {
		t.Fatalf("text status:\n%s", out.String())
	}
}
