package ladder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func invite(id string, at time.Time) *Call {
	return &Call{ID: id, CallIDs: []string{id}, Start: at, Messages: []Message{{Request: true, Method: "INVITE"}}}
}

// A number once given stays with its call: a read after older calls left
// the capture (rotation) and new ones arrived keeps them; pings get none.
func TestNumbersStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), NumbersFile)
	t0 := time.Now()
	a, b := invite("a", t0), invite("b", t0.Add(time.Second))
	ping := &Call{ID: "p", CallIDs: []string{"p"}, Start: t0, Messages: []Message{{Request: true, Method: "OPTIONS"}}}
	if err := Number([]*Call{a, ping, b}, path, true); err != nil {
		t.Fatal(err)
	}
	if a.N != 1 || b.N != 2 || ping.N != 0 {
		t.Fatalf("numbers a=%d b=%d ping=%d, want 1 2 0", a.N, b.N, ping.N)
	}
	// "a" rotated away; "c" is new; b keeps 2, c gets 3 (not 2).
	b2, c := invite("b", t0.Add(time.Second)), invite("c", t0.Add(2*time.Second))
	if err := Number([]*Call{b2, c}, path, true); err != nil {
		t.Fatal(err)
	}
	if b2.N != 2 || c.N != 3 {
		t.Fatalf("after rotation b=%d c=%d, want 2 3", b2.N, c.N)
	}
	raw, _ := os.ReadFile(path)
	if got := strings.Count(string(raw), "\n"); got != 3 {
		t.Errorf("%s has %d lines, want 3:\n%s", path, got, raw)
	}
	// Read-only: a missing file numbers in start order, writes nothing.
	ro := filepath.Join(t.TempDir(), NumbersFile)
	x, y := invite("x", t0), invite("y", t0.Add(time.Second))
	if err := Number([]*Call{x, y}, ro, false); err != nil || x.N != 1 || y.N != 2 {
		t.Fatalf("read-only numbering: %v x=%d y=%d", err, x.N, y.N)
	}
	if _, err := os.Stat(ro); !os.IsNotExist(err) {
		t.Errorf("read-only numbering wrote %s", ro)
	}
}
