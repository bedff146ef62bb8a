package labctl

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLinkDaemons(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MultiCallBinary), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := LinkDaemons(dir, []string{"proxy", "uaclient"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proxy", "uaclient"} {
		target, err := os.Readlink(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		// Relative: an absolute host path would dangle inside the image.
		if target != MultiCallBinary {
			t.Errorf("%s -> %q, want %q", d, target, MultiCallBinary)
		}
	}
	for _, bad := range []string{MultiCallBinary, "../proxy"} {
		if err := LinkDaemons(t.TempDir(), []string{bad}); err == nil {
			t.Errorf("LinkDaemons(%q): no error", bad)
		}
	}
}

func TestDaemonsReadsList(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lab-nets"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "lab-nets", "daemons"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# comment\nproxy\n\n  b2bua \n")
	got, err := (&Runner{Dir: dir}).Daemons()
	if err != nil || len(got) != 2 || got[0] != "proxy" || got[1] != "b2bua" {
		t.Fatalf("Daemons() = %q, %v", got, err)
	}
	write("# only comments\n")
	if _, err := (&Runner{Dir: dir}).Daemons(); err == nil {
		t.Fatal("empty list: no error")
	}
}
