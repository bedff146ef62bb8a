package ladder

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/siplab/siplab/internal/fixtures"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

// fileOf splits a recording back into files by capture point's node, as
// the folder held them: router-a (router-w on the browser site) is file 1,
// the one that rotates away.
func fileOf(p capture.Packet) capture.FileID {
	if n := PointNode(p.Iface); n == "router-a" || n == "router-w" {
		return 1
	}
	return 2
}

// Live fed a recording in slices, as a Tail reads a growing folder, holds
// after every slice the very calls Build draws from what was captured so
// far; a file gone (rotation) takes its packets out of the calls.
func TestLiveMatchesBuild(t *testing.T) {
	scenarios := fixtures.Scenarios(t)
	if len(scenarios) < 10 {
		t.Fatalf("fixtures: %v", scenarios)
	}
	for _, scenario := range scenarios {
		t.Run(scenario, func(t *testing.T) {
			tr := capturetest.Fixture(t, scenario)
			all := append(append([]capture.Packet{}, tr.SIP...), tr.RTP...)
			sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
			live := NewLive(Lab())
			const steps = 7
			var sofar capture.Trace
			rebuiltTotal := 0
			for s := 0; s < steps; s++ {
				part := all[s*len(all)/steps : (s+1)*len(all)/steps]
				b := &capture.Batch{Reset: s == 0}
				files := map[capture.FileID]*capture.FileBatch{}
				for _, p := range part {
					id := fileOf(p)
					if files[id] == nil {
						files[id] = &capture.FileBatch{File: id}
					}
					if p.Kind == capture.KindSIP {
						files[id].SIP = append(files[id].SIP, p)
						sofar.SIP = append(sofar.SIP, p)
					} else {
						files[id].RTP = append(files[id].RTP, p)
						sofar.RTP = append(sofar.RTP, p)
					}
				}
				for id := capture.FileID(1); id <= 2; id++ {
					if files[id] != nil {
						b.Files = append(b.Files, *files[id])
					}
				}
				live.Apply(b)
				got, rebuilt := live.Calls()
				rebuiltTotal += rebuilt
				sameCalls(t, fmt.Sprintf("slice %d", s), got, Build(&sofar, Lab()))
			}
			// Nothing new: nothing rebuilt, the same calls.
			again, rebuilt := live.Calls()
			if rebuilt != 0 {
				t.Errorf("an idle round rebuilt %d calls", rebuilt)
			}
			sameCalls(t, "idle", again, Build(&sofar, Lab()))
			if n := len(again); rebuiltTotal >= n*steps && n > 1 {
				t.Errorf("%d rebuilds for %d calls in %d slices: nothing was kept", rebuiltTotal, n, steps)
			}
			// router-a's file rotated away.
			live.Apply(&capture.Batch{Gone: []capture.FileID{1}})
			var rest capture.Trace
			for _, p := range sofar.SIP {
				if fileOf(p) != 1 {
					rest.SIP = append(rest.SIP, p)
				}
			}
			for _, p := range sofar.RTP {
				if fileOf(p) != 1 {
					rest.RTP = append(rest.RTP, p)
				}
			}
			got, _ := live.Calls()
			sameCalls(t, "router-a gone", got, Build(&rest, Lab()))
		})
	}
}

func sameCalls(t *testing.T, when string, got, want []*Call) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d calls, Build %d", when, len(got), len(want))
	}
	for i := range got {
		g, w := *got[i], *want[i]
		// Build keeps RTP payloads in the trace only; streams never hold them.
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: call %d (%s) differs from Build's:\n%+v\n%+v", when, i, w.ID, g.Streams, w.Streams)
		}
	}
}
