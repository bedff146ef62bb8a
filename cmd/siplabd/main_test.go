package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		argv    []string
		want    []string // argv handed to the daemon; nil: error or -list
		wantErr bool
	}{
		{argv: []string{"/uaclient", "status"}, want: []string{"/uaclient", "status"}},
		{argv: []string{"natrouter", "set", "preset", "symmetric"}, want: []string{"natrouter", "set", "preset", "symmetric"}},
		{argv: []string{"/usr/local/bin/proxy"}, want: []string{"/usr/local/bin/proxy"}},
		{argv: []string{"/siplabd", "b2bua", "status"}, want: []string{"b2bua", "status"}},
		{argv: []string{"/siplabd", "-list"}},
		{argv: []string{"/siplabd"}, wantErr: true},
		{argv: []string{"/siplabd", "sbc", "status"}, want: []string{"sbc", "status"}},
		{argv: []string{"/siplabd", "pbx"}, wantErr: true},
		{argv: []string{"/bash", "-c", "id"}, wantErr: true},
		{argv: nil, wantErr: true},
	} {
		m, args, err := pick(tc.argv)
		if (err != nil) != tc.wantErr {
			t.Errorf("pick(%q): err = %v, want error %v", tc.argv, err, tc.wantErr)
			continue
		}
		if !reflect.DeepEqual(args, tc.want) {
			t.Errorf("pick(%q) args = %q, want %q", tc.argv, args, tc.want)
		}
		if (m != nil) != (tc.want != nil) {
			t.Errorf("pick(%q): main found = %v, want %v", tc.argv, m != nil, tc.want != nil)
		}
	}
}

// The image links every name of lab-nets/daemons to siplabd: a name listed
// there that this binary does not hold would be a dead symlink, a daemon
// here that is not listed would be unreachable in the lab.
func TestDaemonsMatchLabList(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "lab-nets", "daemons"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			listed = append(listed, l)
		}
	}
	slices.Sort(listed)
	if got := names(); !slices.Equal(got, listed) {
		t.Fatalf("siplabd holds %q, lab-nets/daemons lists %q", got, listed)
	}
}
