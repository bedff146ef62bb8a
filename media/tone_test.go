package media

import (
	"math"
	"testing"

	"github.com/zaf/g711"
)

func TestToneThroughG711(t *testing.T) {
	laws := map[string]struct {
		enc func(int16) uint8
		dec func(uint8) int16
	}{
		PCMU: {g711.EncodeUlawFrame, g711.DecodeUlawFrame},
		PCMA: {g711.EncodeAlawFrame, g711.DecodeAlawFrame},
	}
	for law, c := range laws {
		for _, tt := range []struct {
			hz    float64
			beeps int
		}{{300, 0}, {440, 0}, {1000, 0}, {2750, 0}, {523, 3}} {
			g := newToneGen(tt.hz, tt.beeps)
			var m toneMeter
			var pcm [samplesPerPacket]int16
			for range 100 { // two seconds
				g.fill(pcm[:])
				for i, v := range pcm {
					pcm[i] = c.dec(c.enc(v))
				}
				m.add(pcm[:])
			}
			if got := m.hz(); math.Abs(got-tt.hz) > tt.hz*0.01 {
				t.Errorf("%s %v Hz beeps %d: estimated %v", law, tt.hz, tt.beeps, got)
			}
		}
	}
}

func TestBeepPattern(t *testing.T) {
	g := newToneGen(1000, 3)
	var pcm [clockRate]int16
	g.fill(pcm[:])
	// Count 100 ms blocks that carry sound: beeps at 0, 200, 400 ms.
	var loud []int
	for blk := range 10 {
		var peak int16
		for _, v := range pcm[blk*beepOn : (blk+1)*beepOn] {
			peak = max(peak, v)
		}
		if peak > 1000 {
			loud = append(loud, blk)
		}
	}
	if len(loud) != 3 || loud[0] != 0 || loud[1] != 2 || loud[2] != 4 {
		t.Errorf("loud 100 ms blocks %v, want [0 2 4]", loud)
	}
}
