package media

import (
	"math"
	"testing"

	"github.com/zaf/g711"
)

func TestToneMeter(t *testing.T) {
	if _, err := NewToneMeter("G729"); err == nil {
		t.Fatal("G729 meter made")
	}
	for codec, enc := range map[string]func(int16) uint8{PCMU: g711.EncodeUlawFrame, "pcma": g711.EncodeAlawFrame} {
		m, err := NewToneMeter(codec)
		if err != nil {
			t.Fatal(err)
		}
		g := newToneGen(1000, 0)
		pcm := make([]int16, 160)
		payload := make([]byte, 160)
		for range 60 { // 1.2 s
			g.fill(pcm)
			for i, s := range pcm {
				payload[i] = enc(s)
			}
			m.AddPayload(payload)
		}
		if math.Abs(m.Hz()-1000) > 20 || m.LevelDBFS() > -3 || m.LevelDBFS() < -20 {
			t.Errorf("%s: %v Hz at %v dBFS, want 1000 Hz", codec, m.Hz(), m.LevelDBFS())
		}
	}
}
