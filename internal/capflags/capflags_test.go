package capflags

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/siplab/siplab/trace/capture"
)

func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Add(fs, "test sides")
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Bad flags are refused before anything is opened, as usage errors.
func TestBadFlags(t *testing.T) {
	side := []capture.Iface{Side("lan", netip.MustParseAddr("192.168.1.50"))}
	for _, tc := range []struct {
		name  string
		args  []string
		sides []capture.Iface
	}{
		{"zero max bytes", []string{"-capture-dir", t.TempDir(), "-capture-max-bytes", "0"}, side},
		{"negative files", []string{"-capture-dir", t.TempDir(), "-capture-files", "-1"}, side},
		{"unknown filter", []string{"-capture-dir", t.TempDir(), "-capture-filter", "rtp-only"}, side},
		{"hep id too big", []string{"-hep", "127.0.0.1:9060", "-hep-id", "4294967296"}, side},
		{"hep not an address", []string{"-hep", "collector"}, side},
		{"max bytes below one packet", []string{"-capture-dir", t.TempDir(), "-capture-max-bytes", "1000"}, side},
		{"bad node name", []string{"-capture-dir", t.TempDir(), "-capture-node", "router a/lan"}, side},
		{"no sides", []string{"-capture-dir", t.TempDir()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop, err := parse(t, tc.args...).Start(context.Background(), tc.sides, quiet)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("Start: %v, want ErrUsage", err)
			}
			stop() // safe to call on failure
		})
	}
}

// Without -capture-dir and -hep nothing starts, whatever the sides.
func TestOff(t *testing.T) {
	f := parse(t)
	if f.Enabled() {
		t.Fatal("enabled without -capture-dir or -hep")
	}
	stop, err := f.Start(context.Background(), nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if !parse(t, "-capture-dir", "/x").Enabled() || !parse(t, "-hep", "127.0.0.1:9060").Enabled() {
		t.Error("not enabled by -capture-dir or -hep")
	}
}

func TestSideAt(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   string // Match prefix; "" = usage error
	}{
		{"203.0.113.10:5060", "203.0.113.10/32"},
		{"10.0.0.30", "10.0.0.30/32"},
		{"[2001:db8::1]:5060", "2001:db8::1/128"},
		{":5060", ""},
		{"0.0.0.0:5060", ""},
		{"proxy.siplab.test:5060", ""},
	} {
		got, err := SideAt("internet", tc.listen)
		if tc.want == "" {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("SideAt(%q) = %v, %v; want ErrUsage", tc.listen, got, err)
			}
			continue
		}
		if err != nil || got.Match.String() != tc.want || got.Name != "internet" {
			t.Errorf("SideAt(%q) = %+v, %v; want %s", tc.listen, got, err, tc.want)
		}
	}
}

func TestStartAtUsage(t *testing.T) {
	stop, err := parse(t).StartAt(context.Background(), quiet, At{"lan", ":5060"})
	if err != nil {
		t.Fatalf("off: %v", err)
	}
	stop()
	for _, tc := range []struct {
		name string
		at   []At
	}{
		{"no interface address", []At{{"internet", "0.0.0.0:5060"}}},
		{"only empty sides", []At{{"internet", ""}, {"core", ""}}},
	} {
		stop, err := parse(t, "-capture-dir", t.TempDir()).StartAt(context.Background(), quiet, tc.at...)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%s: %v, want ErrUsage", tc.name, err)
		}
		stop()
	}
}
