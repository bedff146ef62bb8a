package media

import (
	"math"
)

const (
	clockRate        = 8000
	samplesPerPacket = 160 // 20 ms of G.711
	// toneAmplitude is about -10 dBFS: loud enough to hear and measure,
	// far from clipping in either G.711 law.
	toneAmplitude = 0.3 * 32767
	// beepOn is how long each beep lasts in a beep pattern, and the pause after it.
	beepOn = clockRate / 10
)

// toneGen makes the test signal: a sine at hz, either continuous or as
// `beeps` 100 ms beeps at the start of every second, so a listener can
// count which phone is talking.
type toneGen struct {
	step  float64 // phase advance per sample
	beeps int
	n     uint64 // samples produced so far, drives phase and pattern
}

func newToneGen(hz float64, beeps int) *toneGen {
	return &toneGen{step: 2 * math.Pi * hz / clockRate, beeps: beeps}
}

// fill writes len(out) samples and advances the signal.
func (g *toneGen) fill(out []int16) {
	for i := range out {
		v := int16(0)
		if g.audible(g.n) {
			// Phase from the absolute sample index (mod one period is
			// unnecessary: float64 keeps enough precision for days).
			v = int16(toneAmplitude * math.Sin(g.step*float64(g.n)))
		}
		out[i] = v
		g.n++
	}
}

// skip advances the signal without producing it, so the tone stays in phase
// with wall-clock time across hold, DTMF and scheduling hiccups.
func (g *toneGen) skip(samples int) { g.n += uint64(samples) }

func (g *toneGen) audible(n uint64) bool {
	if g.beeps == 0 {
		return true
	}
	pos := n % clockRate
	beep := pos / (2 * beepOn)
	return beep < uint64(g.beeps) && pos%(2*beepOn) < beepOn
}

// toneMeter estimates what the peer is sending: the level of the last
// packet and the dominant frequency by counting zero crossings over loud
// packets. Crossings are exact for the lab's single sine and cost nothing,
// where a spectrum would need to know the candidate frequencies first.
type toneMeter struct {
	sign      int8 // sign of the last non-zero loud sample
	crossings uint64
	samples   uint64
	lastHz    float64 // last completed one-second window, 0 if none
	levelDBFS float64
}

// loudRMS is about -40 dBFS; quieter packets are silence (beep gaps, comfort
// levels) whose quantisation noise would add false crossings.
const loudRMS = 330

func (m *toneMeter) add(samples []int16) {
	if len(samples) == 0 {
		return
	}
	var sum float64
	for _, s := range samples {
		sum += float64(s) * float64(s)
	}
	rms := math.Sqrt(sum / float64(len(samples)))
	m.levelDBFS = dbfs(rms)
	if rms < loudRMS {
		m.sign = 0 // do not count a crossing across a gap
		return
	}
	for _, s := range samples {
		var sg int8
		switch {
		case s > 0:
			sg = 1
		case s < 0:
			sg = -1
		default:
			continue
		}
		if m.sign != 0 && sg != m.sign {
			m.crossings++
		}
		m.sign = sg
	}
	m.samples += uint64(len(samples))
	if m.samples >= clockRate {
		m.lastHz = m.estimate()
		m.crossings, m.samples = 0, 0
	}
}

func (m *toneMeter) estimate() float64 {
	if m.samples == 0 {
		return 0
	}
	return math.Round(float64(m.crossings) / 2 / (float64(m.samples) / clockRate))
}

// hz is the last full-second estimate, or a running one before the first
// second of loud audio (from 100 ms on, to stay meaningful).
func (m *toneMeter) hz() float64 {
	if m.lastHz != 0 {
		return m.lastHz
	}
	if m.samples < clockRate/10 {
		return 0
	}
	return m.estimate()
}

// dbfs converts an RMS to dB relative to a full-scale square wave, floored
// at -96 (16-bit silence) so the value stays JSON-encodable.
func dbfs(rms float64) float64 {
	if rms < 1 {
		return -96
	}
	return math.Round(20*math.Log10(rms/32768)*10) / 10
}
