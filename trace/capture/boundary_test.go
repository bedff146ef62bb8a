package capture

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A boundary file next to the captures (siplab reset) hides what came
// before it from ReadFiles; without one everything is read.
func TestReadFilesHonoursBoundary(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"router-a.pcapng", "router-b.pcapng"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "captures", "normal", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	all, err := ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if !all.Boundary.IsZero() || len(all.SIP) < 10 {
		t.Fatalf("without a boundary: %d SIP packets, boundary %v", len(all.SIP), all.Boundary)
	}
	mid := all.SIP[len(all.SIP)/2].Time
	if err := WriteBoundary(dir, mid); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadBoundary(dir); err != nil || !ok || !got.Equal(mid) {
		t.Fatalf("ReadBoundary = %v %v %v, want %v", got, ok, err, mid)
	}
	cut, err := ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Boundary.Equal(mid) || len(cut.SIP) >= len(all.SIP) {
		t.Fatalf("with a boundary: %d of %d SIP packets", len(cut.SIP), len(all.SIP))
	}
	early := map[string]bool{}
	for _, p := range all.SIP {
		if p.Time.Before(mid) {
			early[p.Header("Call-ID")] = true
		}
	}
	for _, p := range append(cut.SIP, cut.RTP...) {
		if p.Time.Before(mid) {
			t.Fatalf("packet at %v before the boundary %v", p.Time, mid)
		}
		if p.Kind == KindSIP && early[p.Header("Call-ID")] {
			t.Fatalf("%s of a dialog begun before the boundary was kept", p.StartLine())
		}
	}
	// A boundary in the future hides everything; a broken file is an error.
	if err := WriteBoundary(dir, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if none, err := ReadFiles(paths...); err != nil || len(none.SIP)+len(none.RTP) != 0 {
		t.Fatalf("future boundary: %v, %d packets", err, len(none.SIP))
	}
	if err := os.WriteFile(filepath.Join(dir, BoundaryFile), []byte("yesterday"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFiles(paths...); err == nil {
		t.Fatal("a garbled boundary file was accepted")
	}
}
