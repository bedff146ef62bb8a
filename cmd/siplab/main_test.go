package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/uaclient"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"demo"},
		{"demo", "dance"},
		{"demo", "call", "alice"},
		{"up", "-nonsense"},
		{"attack", "sbc"},
		{"exec", "alice"},
	} {
		err := run(context.Background(), args)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

func TestVerdict(t *testing.T) {
	heard := &uaclient.CallStatus{ToneHz: 1400, Media: &media.Stats{}}
	heard.Media.Received.Packets = 150
	tests := []struct {
		name string
		c    *uaclient.CallStatus
		hz   float64
		want string
	}{
		{"no call", nil, 1400, "alice hears nothing from bob"},
		{"no rtp", &uaclient.CallStatus{Media: &media.Stats{}}, 1400, "alice hears nothing from bob"},
		{"peer's tone", heard, 1400, "alice hears bob: 1400 Hz"},
		{"another tone", heard, 750, "alice hears someone else"},
	}
	for _, tt := range tests {
		if got := verdict("alice", "bob", tt.c, tt.hz); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want prefix %q", tt.name, got, tt.want)
		}
	}
}
