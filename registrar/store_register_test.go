package registrar

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// The store's REGISTER operation: all changes or none under the AOR's
// lock, refusals leave the bindings as they were, and what it applied is
// in the journal once it returns.
func TestStoreRegister(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := newStore()
	p, err := openPersist(dir, 1<<20, s, testLogger(t), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.close() })
	s.journal = p.journal
	const aor = "sip:alice@siplab.test"
	bind := func(uri string) location.Binding {
		return location.Binding{AOR: aor, Contact: "<" + uri + ">", ContactURI: uri, CallID: "c1", CSeq: 2, Expires: now.Add(time.Hour), Updated: now}
	}
	op := func(cseq uint32, set ...string) registerOp {
		o := registerOp{rec: record{AOR: aor}, callID: "c1", cseq: cseq, now: now, maxContacts: 2}
		for _, u := range set {
			b := bind(u)
			b.CSeq = cseq
			o.rec.Set = append(o.rec.Set, b)
			o.touched = append(o.touched, contactKey(u))
		}
		return o
	}
	ctx := context.Background()
	if _, after, err := s.register(ctx, op(2, "sip:alice@192.168.1.50:5060")); err != nil || len(after) != 1 {
		t.Fatalf("first REGISTER: %v %v", after, err)
	}
	var ooo *outOfOrderError
	if _, _, err := s.register(ctx, op(2, "sip:alice@192.168.1.50:5060")); !errors.As(err, &ooo) || ooo.stored.CSeq != 2 {
		t.Fatalf("same CSeq again: %v, want out of order", err)
	}
	var tooMany *tooManyError
	if _, _, err := s.register(ctx, op(3, "sip:alice@192.168.1.51:5060", "sip:alice@192.168.1.52:5060")); !errors.As(err, &tooMany) || tooMany.contacts != 3 {
		t.Fatalf("a third contact: %v, want too many", err)
	}
	before, after, err := s.register(ctx, op(4)) // a fetch
	if err != nil || len(before) != 1 || len(after) != 1 {
		t.Fatalf("fetch: %v %v %v", before, after, err)
	}
	if got := s.lookup(aor, now); len(got) != 1 || got[0].CSeq != 2 {
		t.Fatalf("refused changes leaked into the store: %+v", got)
	}
	clear := registerOp{rec: record{AOR: aor, Clear: true}, callID: "c2", cseq: 1, now: now, maxContacts: 2}
	if _, after, err := s.register(ctx, clear); err != nil || len(after) != 0 {
		t.Fatalf("Contact: *: %v %v", after, err)
	}
	raw, err := os.ReadFile(dir + "/" + journalName(p.generation()))
	if err != nil {
		t.Fatal(err)
	}
	// Two records: the first binding and the clear; nothing of the refused
	// ones or the fetch.
	if lines := strings.Split(strings.TrimSpace(string(raw)), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"clear":true`) {
		t.Fatalf("journal:\n%s", raw)
	}
	if _, _, err := s.register(context.Background(), op(9, "sip:alice@192.168.1.60:5060")); err != nil {
		t.Fatal(err)
	}
	p.close()
	if _, _, err := s.register(ctx, op(10, "sip:alice@192.168.1.61:5060")); !errors.Is(err, errNotStored) {
		t.Fatalf("after the journal closed: %v, want not stored", err)
	}
}
