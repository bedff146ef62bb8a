package ladder_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
	"github.com/siplab/siplab/trace/ladder"
)

// twentyCalls is a folder with 20 calls up for 30 s (about 240,000
// packets), and a Tail that has read it.
func twentyCalls(b *testing.B) (*capturetest.Lab, *capture.Tail, *capture.Batch) {
	b.Helper()
	l := capturetest.Up(b, 20, 30*time.Second)
	tail := &capture.Tail{Dir: l.Dir}
	first, err := tail.Read()
	if err != nil {
		b.Fatal(err)
	}
	return l, tail, first
}

func invites(b *testing.B, calls []*ladder.Call) {
	b.Helper()
	n := 0
	for _, c := range calls {
		if c.IsInvite() && len(c.Streams) > 0 {
			n++
		}
	}
	if n != 20 {
		b.Fatalf("%d calls with RTP, want 20", n)
	}
}

// BenchmarkBuild20Calls rebuilds every call from the whole trace (the
// console before Live, on top of reading the folder).
func BenchmarkBuild20Calls(b *testing.B) {
	l, _, _ := twentyCalls(b)
	paths, _ := filepath.Glob(filepath.Join(l.Dir, "*.pcapng"))
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		invites(b, ladder.Build(tr, ladder.Lab()))
	}
}

// BenchmarkLive20Calls is a poll round with 20 calls up: the 250 ms of
// packets the folder gained applied, the calls returned.
func BenchmarkLive20Calls(b *testing.B) {
	l, tail, first := twentyCalls(b)
	live := ladder.NewLive(ladder.Lab())
	live.Apply(first)
	live.Calls()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := l.Advance(250 * time.Millisecond); err != nil {
			b.Fatal(err)
		}
		bt, err := tail.Read()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		live.Apply(bt)
		calls, _ := live.Calls()
		invites(b, calls)
	}
}

// BenchmarkLiveFromScratch20Calls builds every call of the folder in a
// fresh Live: the console's first round, or a round after a reset.
func BenchmarkLiveFromScratch20Calls(b *testing.B) {
	_, _, first := twentyCalls(b)
	b.ResetTimer()
	for b.Loop() {
		live := ladder.NewLive(ladder.Lab())
		live.Apply(first)
		calls, _ := live.Calls()
		invites(b, calls)
	}
}
