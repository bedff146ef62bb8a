package labops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/fixtures"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/ladder"
)

// A copied folder is read as it is: its calls, numbered, no calls.tsv
// written; the lab's own folder keeps the numbers.
func TestReadCallsNumbersOnlyTheLabsOwnFolder(t *testing.T) {
	dir := fixtures.Copy(t, "private-sdp")
	calls, err := ReadCalls(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("no calls in the fixture")
	}
	if _, err := os.Stat(filepath.Join(dir, ladder.NumbersFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a copied folder got a %s: %v", ladder.NumbersFile, err)
	}
	if _, err := ReadCalls(dir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ladder.NumbersFile)); err != nil {
		t.Errorf("the lab's own folder kept no numbers: %v", err)
	}
}

// A file last written before the boundary is not even opened: a rotated
// file of an earlier session that is not a capture any more (here: not
// pcapng at all) does not fail the read, the fresh files are read.
func TestReadCallsSkipsFilesBeforeTheBoundary(t *testing.T) {
	dir := fixtures.Copy(t, "private-sdp")
	stale := filepath.Join(dir, "router-a.1.pcapng")
	if err := os.WriteFile(stale, []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCalls(dir, false); !errors.Is(err, capture.ErrNotPcapng) {
		t.Fatalf("with the stale file and no boundary: %v, want ErrNotPcapng", err)
	}
	// The boundary sits between the stale file and the fixture's packets.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := capture.WriteBoundary(dir, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(stale, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	calls, err := ReadCalls(dir, false)
	if err != nil || len(calls) == 0 {
		t.Errorf("with the stale file before the boundary: %d calls, %v; want the fixture's calls", len(calls), err)
	}
}

// Only phone verbs reach a phone: anything else is refused before Docker.
func TestPhoneRefusesOtherVerbs(t *testing.T) {
	r := &labctl.Runner{Dir: t.TempDir()}
	for _, verb := range []string{"exec", "set", "sh", "status", ""} {
		if _, err := Phone(context.Background(), r, verb, []string{"alice"}); !errors.Is(err, ErrUsage) {
			t.Errorf("Phone(%q): %v, want ErrUsage", verb, err)
		}
	}
	if _, err := Phone(context.Background(), r, "call", nil); !errors.Is(err, ErrUsage) {
		t.Errorf("Phone(call) with no phone: %v, want ErrUsage", err)
	}
	for _, verb := range []string{"call", "answer", "hangup", "hold", "resume", "transfer", "dtmf"} {
		if !IsPhoneVerb(verb) {
			t.Errorf("%s is not a phone verb", verb)
		}
	}
}
