package registrar

import (
	"context"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// The watch stream: a snapshot, then every change numbered in order with
// the AOR's whole list, expiry sweeps included; a watcher that falls
// behind is cut off rather than given a stream with a gap.
func TestWatch(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := newStore()
	const aor = "sip:alice@siplab.test"
	set := func(uri string, cseq uint32, ttl time.Duration) {
		t.Helper()
		b := location.Binding{AOR: aor, ContactURI: uri, CallID: "c1", CSeq: cseq, Expires: now.Add(ttl), Updated: now}
		op := registerOp{rec: record{AOR: aor, Set: []location.Binding{b}}, touched: []string{contactKey(uri)},
			callID: "c1", cseq: cseq, now: now, maxContacts: 5}
		if _, _, err := s.register(context.Background(), op); err != nil {
			t.Fatal(err)
		}
	}
	set("sip:alice@192.0.2.1", 1, time.Hour)
	r := &Registrar{store: s, now: func() time.Time { return now }}

	snap, changes, stop := r.Watch()
	defer stop()
	if !snap.Snapshot || snap.Version != 1 || len(snap.Bindings) != 1 {
		t.Fatalf("snapshot %+v, want version 1 with one binding", snap)
	}
	set("sip:alice@192.0.2.2", 2, time.Minute)
	c := <-changes
	if c.Version != 2 || c.AOR != aor || len(c.Bindings) != 2 {
		t.Fatalf("change %+v, want version 2 with both bindings of %s", c, aor)
	}
	if n := s.gc(now.Add(2 * time.Minute)); n != 1 {
		t.Fatalf("gc dropped %d, want 1", n)
	}
	c = <-changes
	if c.Version != 3 || len(c.Bindings) != 1 || c.Bindings[0].ContactURI != "sip:alice@192.0.2.1" {
		t.Fatalf("after the sweep %+v, want version 3 with the hour-long binding only", c)
	}
	if r.Version() != 3 {
		t.Fatalf("version %d, want 3", r.Version())
	}

	for i := 0; i <= watchQueue; i++ {
		set("sip:alice@192.0.2.1", uint32(10+i), time.Hour)
	}
	n := 0
	for range changes {
		n++
	}
	if n != watchQueue {
		t.Fatalf("a watcher that never reads got %d changes before its stream ended, want %d", n, watchQueue)
	}
}
