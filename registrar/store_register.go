package registrar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// registerOp is one REGISTER's changes to one AOR, as the store applies
// them: the journal record (clear, delete, set) plus what decides whether
// it may apply at all.
type registerOp struct {
	rec record
	// touched are the contact keys the request names: with its Call-ID
	// and CSeq, they decide whether it is older than what is stored.
	touched []string
	// delKeys and setKeys are the contact keys of rec.Del and rec.Set.
	delKeys, setKeys []string
	callID           string
	cseq             uint32
	now              time.Time
	// maxContacts bounds the live bindings after the change.
	maxContacts int
}

// outOfOrderError: a binding the request touches was stored by a newer or
// equal CSeq of the same registration (RFC 3261 §10.3 step 7).
type outOfOrderError struct {
	cseq   uint32
	stored location.Binding
}

func (e *outOfOrderError) Error() string {
	return fmt.Sprintf("CSeq %d is not newer than %d already stored for %s", e.cseq, e.stored.CSeq, e.stored.ContactURI)
}

// tooManyError: the change would leave more live bindings than allowed.
type tooManyError struct{ contacts, max int }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("%d contacts, at most %d contacts per user", e.contacts, e.max)
}

var (
	// errNotStored: the journal could not take the record (encoding or
	// write failure); the change is not acknowledged.
	errNotStored = errors.New("registrar: cannot store binding")
	// errStopped: the request ended before its record was on disk.
	errStopped = errors.New("registrar: stopped before the binding was stored")
)

// register applies op atomically under the AOR's shard lock — all changes
// or none — and journals it there, so the journal's order for an AOR is
// the order its changes were applied in; then it waits until the record is
// durable (nothing is acknowledged before it is on disk). It returns the
// bindings before and after. A request that changes nothing (a fetch)
// journals nothing.
func (s *store) register(ctx context.Context, op registerOp) (before, after []entry, err error) {
	before, after, done, err := s.registerHeld(op)
	if err != nil || done == nil {
		return before, after, err
	}
	select {
	case <-done.done:
	case <-ctx.Done():
		return before, after, errStopped
	}
	return before, after, journalErr(done)
}

// journalErr is what a completed batch means for its REGISTERs.
func journalErr(done *batch) error {
	if done.err != nil {
		return fmt.Errorf("%w: journal: %w", errNotStored, done.err)
	}
	return nil
}

// registerHeld is register without the wait: done, when not nil, is the
// group commit carrying the record, and nothing may be acknowledged before
// it completes without error (journalErr).
func (s *store) registerHeld(op registerOp) (before, after []entry, done *batch, err error) {
	si := shardOf(op.rec.AOR)
	sh := &s.shards[si]
	sh.mu.Lock()
	before = sh.aors[op.rec.AOR]
	for _, e := range before {
		// A binding may be changed only by a newer request of the same
		// registration (same Call-ID) or by another one.
		if e.b.CallID == op.callID && e.b.CSeq >= op.cseq && e.b.Expires.After(op.now) &&
			(op.rec.Clear || slices.Contains(op.touched, e.key)) {
			sh.mu.Unlock()
			return before, nil, nil, &outOfOrderError{cseq: op.cseq, stored: e.b}
		}
	}
	rec := &op.rec
	if !rec.Clear && len(rec.Del) == 0 && len(rec.Set) == 0 {
		sh.mu.Unlock()
		return before, before, nil, nil
	}
	after = applyKeyed(before, rec, op.delKeys, op.setKeys)
	// Expired bindings do not count against the limit and are not worth
	// keeping.
	after = slices.DeleteFunc(after, func(e entry) bool { return !e.b.Expires.After(op.now) })
	if len(after) > op.maxContacts {
		sh.mu.Unlock()
		return before, nil, nil, &tooManyError{contacts: len(after), max: op.maxContacts}
	}
	if s.journal != nil {
		line, err := encodeRecord(nil, rec)
		if err != nil {
			sh.mu.Unlock()
			return before, nil, nil, fmt.Errorf("%w: encode journal record: %w", errNotStored, err)
		}
		done = s.journal.append(si, line)
	}
	sh.set(rec.AOR, after)
	s.watch.publish(rec.AOR, after)
	sh.mu.Unlock()
	return before, after, done, nil
}
