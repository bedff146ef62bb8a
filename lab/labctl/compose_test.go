package labctl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestComposeMajor(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    int
	}{
		{"5.6.0", 5},
		{"v2.27.1", 2},
		{"1.29.2", 1},
		{"dev", 0},
		{"", 0},
	} {
		if got := (Compose{Version: tc.version}).Major(); got != tc.want {
			t.Errorf("Major(%q) = %d, want %d", tc.version, got, tc.want)
		}
	}
}

// A forced CLI that is not there is an error naming the variable, never a
// silent fallback to the other Compose.
func TestComposeCommandForcedMissing(t *testing.T) {
	t.Setenv(ComposeEnv, "siplab-no-such-compose")
	_, err := ComposeCommand(context.Background())
	if err == nil || !strings.Contains(err.Error(), ComposeEnv) {
		t.Fatalf("err = %v, want one naming %s", err, ComposeEnv)
	}
}

func TestFindRepo(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "docker-compose.yml"), []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "cmd", "siplab")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	got, err := FindRepo()
	if err != nil || got != root {
		t.Fatalf("FindRepo from %s = %q, %v; want %q", sub, got, err, root)
	}
	t.Chdir(t.TempDir())
	if got, err := FindRepo(); err == nil {
		t.Fatalf("FindRepo outside any repository = %q, want an error", got)
	}
}
