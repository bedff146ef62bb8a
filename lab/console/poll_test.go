package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

// The capture loop follows a growing folder: a browser that connects gets
// every call, then only the calls that changed; merged as the page merges
// them, they are the whole list the hub keeps for late comers. An idle
// folder sends nothing.
func TestCaptureLoopSendsChangedCalls(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "captures")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := capturetest.New(dir, 12, time.Now().Add(-time.Minute).UTC())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Calls 1-9 placed, one every 500 ms; the RTP of calls 1-3 is past
	// their time span (3 s after the ACK): they are done changing.
	if err := l.Advance(4500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	hub := NewHub()
	// The capture loop alone: the status loop would ask Docker.
	p := newPoller(Config{CaptureEvery: 20 * time.Millisecond, Lab: &DockerLab{R: &labctl.Runner{Dir: root}, Root: root},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, hub)
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := hub.subscribe()
	done := make(chan struct{})
	go func() { p.captureLoop(ctx); close(done) }()
	// The loop writes calls.tsv in the folder: it ends before the folder goes.
	defer func() { cancel(); <-done }()

	next := func(what string) callsDoc {
		t.Helper()
		select {
		case e := <-ch:
			var d callsDoc
			if err := json.Unmarshal(e.Data, &d); err != nil || e.Name != "calls" {
				t.Fatalf("%s: event %s %s: %v", what, e.Name, e.Data, err)
			}
			return d
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", what)
		}
		return callsDoc{}
	}
	numbers := func(cs []callDoc) []int {
		var out []int
		for _, c := range cs {
			out = append(out, c.N)
		}
		return out
	}
	first := next("first read")
	if first.Delta || !slices.Equal(numbers(first.Calls), []int{1, 2, 3, 4, 5, 6, 7, 8, 9}) || first.Findings == nil {
		t.Fatalf("first event: delta %v, calls %v, findings %v", first.Delta, numbers(first.Calls), first.Findings)
	}
	have := map[int]callDoc{}
	for _, c := range first.Calls {
		have[c.N] = c
	}
	// Calls 10-12 are placed; the RTP of the calls from 5 on goes on in
	// their time span.
	if err := l.Advance(1200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var d callsDoc
	for d = next("after growth"); !slices.Contains(d.Order, 12); d = next("after growth") {
		for _, c := range d.Calls {
			have[c.N] = c
		}
	}
	if !d.Delta || !slices.Equal(d.Order, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Fatalf("delta: %v, order %v", d.Delta, d.Order)
	}
	if sent := numbers(d.Calls); slices.ContainsFunc(sent, func(n int) bool { return n <= 3 }) || !slices.Contains(sent, 12) {
		t.Errorf("sent calls %v: calls 1-3 did not change, 12 is new", sent)
	}
	for _, c := range d.Calls {
		have[c.N] = c
	}
	// Merged, the deltas are the full list the hub keeps.
	last, _ := hub.Last("calls")
	var full callsDoc
	if err := json.Unmarshal(last.Data, &full); err != nil || full.Delta {
		t.Fatalf("the hub keeps %s", last.Data)
	}
	var merged []callDoc
	for _, n := range d.Order {
		merged = append(merged, have[n])
	}
	if !slices.Equal(merged, full.Calls) {
		t.Fatalf("merged deltas:\n%+v\nfull list:\n%+v", merged, full.Calls)
	}
	// Idle: nothing is written. The doctor's findings may follow the last
	// change by up to a second (doctorEvery); then nothing comes.
	for drain := time.After(doctorEvery + 500*time.Millisecond); ; {
		select {
		case <-ch:
			continue
		case <-drain:
		}
		break
	}
	select {
	case e := <-ch:
		t.Fatalf("an idle folder sent %s", e.Data)
	case <-time.After(1500 * time.Millisecond):
	}
}
