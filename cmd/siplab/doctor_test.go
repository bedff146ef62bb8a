package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// siplab doctor's exit status is the verdict: nil (exit 0) on the healthy
// lab, errFindings (exit 1) on a fixture with a bug, a usage error for a
// positional argument or a bad severity. Its output goes to stdout, which
// is discarded here.
func TestDoctorExitCode(t *testing.T) {
	stdout := os.Stdout
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = devnull
	t.Cleanup(func() { os.Stdout = stdout; devnull.Close() })
	fixture := func(name string) string { return filepath.Join("..", "..", "testdata", "captures", name) }
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"-dir", fixture("healthy")}, nil},
		{[]string{"-dir", fixture("healthy"), "-notes"}, nil},
		{[]string{"-dir", fixture("pinhole-expired")}, errFindings},
		{[]string{"-dir", fixture("pinhole-expired"), "-severity", "error"}, errFindings},
		{[]string{"-dir", fixture("private-sdp"), "-call", "1"}, errFindings},
		{[]string{"-dir", fixture("healthy"), "-call", "6"}, nil},
		{[]string{"-dir", fixture("healthy"), "-since", "2m"}, nil},
		{[]string{"-dir", fixture("healthy"), "3"}, errUsage},
		{[]string{"-dir", fixture("healthy"), "-severity", "loud"}, errUsage},
	} {
		err := doctorCmd(tc.args)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("doctor %v: %v, want %v", tc.args, err, tc.want)
		}
	}
}
