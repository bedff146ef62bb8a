package labops

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/ladder"
)

// Follower is ReadCalls for a folder that keeps growing (the console's
// live ladder): each Read decodes only what the capture files gained
// (capture.Tail) and assembles again only the calls it changed
// (ladder.Live); the calls are the ones ReadCalls would return, numbered
// the same way. Not safe for concurrent use.
type Follower struct {
	dir  string
	own  bool
	tail *capture.Tail
	live *ladder.Live
}

// Follow starts following dir; own keeps the call numbers in its
// calls.tsv, as ReadCalls.
func Follow(dir string, own bool) *Follower {
	return &Follower{dir: dir, own: own, tail: &capture.Tail{Dir: dir}, live: ladder.NewLive(ladder.Lab())}
}

// FollowRound is what one Read found.
type FollowRound struct {
	// Changed is false when the folder gained nothing: the calls are
	// those of the last round.
	Changed bool
	// Rebuilt is how many calls were assembled again; Bytes how much of
	// the files was read; Gone how many files rotated away; Reset whether
	// the folder was read anew (the first round, a new boundary).
	Rebuilt int
	Bytes   int64
	Gone    int
	Reset   bool
	// Read is the time spent reading the files, Build assembling the calls.
	Read, Build time.Duration
}

// Read returns the calls of the folder as it is now.
func (f *Follower) Read() ([]*ladder.Call, FollowRound, error) {
	var r FollowRound
	start := time.Now()
	b, err := f.tail.Read()
	if err != nil {
		return nil, r, err
	}
	r.Read = time.Since(start)
	r.Bytes, r.Changed, r.Gone, r.Reset = b.Bytes, !b.Empty(), len(b.Gone), b.Reset
	f.live.Apply(b)
	calls, rebuilt := f.live.Calls()
	r.Rebuilt, r.Build = rebuilt, time.Since(start)-r.Read
	if len(calls) == 0 {
		if paths, _ := filepath.Glob(filepath.Join(f.dir, "*.pcapng")); len(paths) == 0 {
			return nil, r, fmt.Errorf("no *.pcapng files in %s (is the lab up? see docs/capture.md)", f.dir)
		}
		return nil, r, fmt.Errorf("%w (in %s)", ladder.ErrNoCalls, f.dir)
	}
	if err := ladder.Number(calls, filepath.Join(f.dir, ladder.NumbersFile), f.own); err != nil {
		return nil, r, err
	}
	return calls, r, nil
}
