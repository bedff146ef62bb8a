package siptest

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ParseWAV reads a recording as the PBX's voicemail writes it: a 16-bit
// mono PCM WAV. It returns the samples and the sample rate.
func ParseWAV(b []byte) ([]int16, int, error) {
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[36:40]) != "data" {
		return nil, 0, errors.New("not a WAV file")
	}
	if f, ch, bits := binary.LittleEndian.Uint16(b[20:]), binary.LittleEndian.Uint16(b[22:]), binary.LittleEndian.Uint16(b[34:]); f != 1 || ch != 1 || bits != 16 {
		return nil, 0, fmt.Errorf("wav format %d, %d channels, %d bits: want PCM mono 16-bit", f, ch, bits)
	}
	n := binary.LittleEndian.Uint32(b[40:])
	if int(n) != len(b)-44 || binary.LittleEndian.Uint32(b[4:]) != 36+n {
		return nil, 0, fmt.Errorf("wav sizes: data %d, file %d", n, len(b))
	}
	out := make([]int16, n/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return out, int(binary.LittleEndian.Uint32(b[24:])), nil
}

// ToneHz estimates a single tone's frequency (8 kHz samples) from zero
// crossings in loud 20 ms frames (quiet frames are beep gaps or silence).
func ToneHz(s []int16) float64 {
	var crossings, samples int
	for off := 0; off+160 <= len(s); off += 160 {
		var sum float64
		for _, v := range s[off : off+160] {
			sum += float64(v) * float64(v)
		}
		if sum/160 < 330*330 {
			continue
		}
		// Compare with the sample before each one, across frame edges too.
		for i := max(off, 1); i < off+160; i++ {
			if (s[i-1] < 0) != (s[i] < 0) {
				crossings++
			}
		}
		samples += 160
	}
	if samples == 0 {
		return 0
	}
	return float64(crossings) / 2 / (float64(samples) / 8000)
}
