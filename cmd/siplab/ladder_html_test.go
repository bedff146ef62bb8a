package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `siplab ladder -html` as the README writes it: a flag without argument
// writes ladder.html in the working directory; -o names the file; the
// exercises' `-html ladder.html` names it too.
func TestLadderHTMLFlag(t *testing.T) {
	fixture, err := filepath.Abs(filepath.Join("..", "..", "testdata", "captures", "edge-direct"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tt := range []struct {
		args []string
		file string
	}{
		{[]string{"-html"}, "ladder.html"},
		{[]string{"-html", "-o", "out.html"}, "out.html"},
		{[]string{"-o", "implied.html"}, "implied.html"},
		{[]string{"-html", "named.html"}, "named.html"},
		{[]string{"1", "-html", "-o", filepath.Join(dir, "abs.html")}, "abs.html"},
	} {
		if err := run(context.Background(), append([]string{"ladder", "-dir", fixture}, tt.args...)); err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		page, err := os.ReadFile(filepath.Join(dir, tt.file))
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !strings.HasPrefix(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), `class="ladder"`) {
			t.Errorf("%q: %s is not the ladder page", tt.args, tt.file)
		}
	}
	for _, args := range [][]string{
		{"-html", "a.html", "b.html"},
		{"-html", "1", "2"},
	} {
		if err := run(context.Background(), append([]string{"ladder", "-dir", fixture}, args...)); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	if err := run(context.Background(), []string{"ladder", "-dir", fixture, "-html", "-o", filepath.Join(dir, "missing", "x.html")}); err == nil || !strings.Contains(err.Error(), "ladder -html") {
		t.Errorf("unwritable file: got %v", err)
	}
}
