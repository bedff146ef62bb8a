package capture_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

// twentyCalls is a folder with 20 calls up for 30 s: their setup and
// RTP on both sides of both routers (about 240,000 packets).
func twentyCalls(b *testing.B) *capturetest.Lab { return capturetest.Up(b, 20, 30*time.Second) }

// BenchmarkReadFiles20Calls is a poll round that reads the whole folder
// (the console before Tail).
func BenchmarkReadFiles20Calls(b *testing.B) {
	l := twentyCalls(b)
	paths, _ := filepath.Glob(filepath.Join(l.Dir, "*.pcapng"))
	b.ResetTimer()
	for b.Loop() {
		l.AdvanceUntimed(b, 250*time.Millisecond)
		tr, err := capture.ReadFiles(paths...)
		if err != nil || len(tr.RTP) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkTail20Calls is a poll round that reads what the folder gained
// in 250 ms with 20 calls up.
func BenchmarkTail20Calls(b *testing.B) {
	l := twentyCalls(b)
	tail := &capture.Tail{Dir: l.Dir}
	if _, err := tail.Read(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		l.AdvanceUntimed(b, 250*time.Millisecond)
		bt, err := tail.Read()
		if err != nil || bt.Empty() {
			b.Fatal(err)
		}
	}
}
