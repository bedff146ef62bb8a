package ladder

import (
	"iter"
	"sort"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// liveSTUN holds Live's STUN and ChannelData packets (a browser call's
// ICE and TURN, stun.go): few beside the RTP, kept whole, in time order.
type liveSTUN struct {
	pkts  []liveSIP
	dirty bool // appended since the last sort
	// fresh is the span of the packets added or dropped since the last
	// Calls; any is false when there were none.
	fresh span
	any   bool
}

func (s *liveSTUN) touch(ns int64) {
	if !s.any || ns < s.fresh.from {
		s.fresh.from = ns
	}
	if !s.any || ns > s.fresh.to {
		s.fresh.to = ns
	}
	s.any = true
}

// add takes a file's new packets: its STUN and ChannelData.
func (s *liveSTUN) add(file capture.FileID, ps []capture.Packet) {
	for _, p := range ps {
		if (p.Kind == capture.KindSTUN || p.Kind == capture.KindChannelData) && p.STUN != nil {
			s.pkts = append(s.pkts, liveSIP{file, p})
			s.dirty = true
			s.touch(p.Time.UnixNano())
		}
	}
}

// drop forgets the packets of the files gone.
func (s *liveSTUN) drop(gone map[capture.FileID]bool) {
	keep := s.pkts[:0]
	for _, p := range s.pkts {
		if gone[p.file] {
			s.touch(p.p.Time.UnixNano())
			continue
		}
		keep = append(keep, p)
	}
	clear(s.pkts[len(keep):])
	s.pkts = keep
}

// sort puts the packets in Build's order: by time, then as they came.
func (s *liveSTUN) sort() {
	if s.dirty {
		sort.SliceStable(s.pkts, func(i, j int) bool { return s.pkts[i].p.Time.Before(s.pkts[j].p.Time) })
		s.dirty = false
	}
}

// freshIn reports whether packets arrived or went within [from, to].
func (s *liveSTUN) freshIn(from, to time.Time) bool {
	return s.any && s.fresh.to >= from.UnixNano() && s.fresh.from <= to.UnixNano()
}

// window yields the packets between from and to, in order.
func (s *liveSTUN) window(from, to time.Time) iter.Seq[*capture.Packet] {
	return func(yield func(*capture.Packet) bool) {
		k := sort.Search(len(s.pkts), func(i int) bool { return !s.pkts[i].p.Time.Before(from) })
		for ; k < len(s.pkts) && !s.pkts[k].p.Time.After(to); k++ {
			if !yield(&s.pkts[k].p) {
				return
			}
		}
	}
}
