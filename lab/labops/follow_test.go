package labops

import (
	"reflect"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
	"github.com/siplab/siplab/trace/doctor"
)

// A Follower read as the folder grows, across a reset's boundary, returns
// after every round the calls ReadCalls returns, numbered alike.
func TestFollowMatchesReadCalls(t *testing.T) {
	t0 := time.Now().Add(-time.Minute).UTC()
	l, err := capturetest.New(t.TempDir(), 12, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := Follow(l.Dir, false)
	if _, _, err := f.Read(); err == nil {
		t.Fatal("an empty folder reads without an error")
	}
	beforeReset := 0
	for round := 0; round < 12; round++ {
		if err := l.Advance(400 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if round == 4 {
			// siplab reset: the calls begun before it are left out.
			if err := capture.WriteBoundary(l.Dir, l.Now.Add(-200*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		got, r, err := f.Read()
		want, werr := ReadCalls(l.Dir, false)
		if (err == nil) != (werr == nil) {
			t.Fatalf("round %d: Follow %v, ReadCalls %v", round, err, werr)
		}
		if err != nil {
			continue
		}
		if !r.Changed || r.Bytes == 0 {
			t.Errorf("round %d: the folder grew but the round says %+v", round, r)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d calls, ReadCalls %d", round, len(got), len(want))
		}
		if round == 3 {
			beforeReset = len(got)
		}
		if round == 6 && (len(got) == 0 || len(got) >= beforeReset) {
			t.Errorf("after the boundary: %d calls (%d before it)", len(got), beforeReset)
		}
		for i := range got {
			if !reflect.DeepEqual(*got[i], *want[i]) {
				t.Fatalf("round %d: call %d (%s) differs", round, i, want[i].ID)
			}
		}
	}
}

func twentyCalls(b *testing.B) string { return twentyCallsLab(b).Dir }

func twentyCallsLab(b *testing.B) *capturetest.Lab { return capturetest.Up(b, 20, 30*time.Second) }

// BenchmarkReadCalls20Calls is the console's round before Follow: the
// whole folder read and every call rebuilt (20 calls up for 30 s).
func BenchmarkReadCalls20Calls(b *testing.B) {
	dir := twentyCalls(b)
	for b.Loop() {
		if _, err := ReadCalls(dir, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFollow20Calls is a round of the console's Follower with 20
// calls up: what the folder gained in 250 ms read, the calls returned
// and numbered.
func BenchmarkFollow20Calls(b *testing.B) {
	l := twentyCallsLab(b)
	f := Follow(l.Dir, false)
	if _, _, err := f.Read(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l.AdvanceUntimed(b, 250*time.Millisecond)
		if calls, r, err := f.Read(); err != nil || !r.Changed || len(calls) != 20 {
			b.Fatal(err, r, len(calls))
		}
	}
}

// BenchmarkFollowIdle20Calls is a round of the console's Follower when
// nothing was written: the price of polling every 100 ms.
func BenchmarkFollowIdle20Calls(b *testing.B) {
	f := Follow(twentyCalls(b), false)
	if _, _, err := f.Read(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, r, err := f.Read(); err != nil || r.Changed {
			b.Fatal(err, r)
		}
	}
}

// BenchmarkDiagnose20Calls is the doctor on the 20 calls (the console
// runs it at most once a second, apart from the ladder).
func BenchmarkDiagnose20Calls(b *testing.B) {
	calls, err := ReadCalls(twentyCalls(b), false)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		doctor.Diagnose(calls, calls)
	}
}
