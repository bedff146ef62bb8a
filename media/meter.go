package media

import (
	"fmt"
	"strings"

	"github.com/zaf/g711"
)

// ToneMeter tells whose test tone a G.711 stream carries, for code that
// relays RTP without a Session of its own (the WebRTC gateway): the same
// zero-crossing estimate a Session's receive statistics use. Not safe for
// concurrent use.
type ToneMeter struct {
	m      toneMeter
	decode func(uint8) int16
	buf    []int16
}

// NewToneMeter makes a meter for codec PCMU or PCMA (case-insensitive).
func NewToneMeter(codec string) (*ToneMeter, error) {
	switch strings.ToUpper(codec) {
	case PCMU:
		return &ToneMeter{decode: g711.DecodeUlawFrame}, nil
	case PCMA:
		return &ToneMeter{decode: g711.DecodeAlawFrame}, nil
	}
	return nil, fmt.Errorf("%w: codec %q (want PCMU or PCMA)", ErrInvalidConfig, codec)
}

// AddPayload decodes one RTP payload of the meter's codec and measures it.
func (t *ToneMeter) AddPayload(payload []byte) {
	t.buf = t.buf[:0]
	for _, b := range payload {
		t.buf = append(t.buf, t.decode(b))
	}
	t.m.add(t.buf)
}

// Hz is the dominant frequency heard so far (0 before 100 ms of loud audio).
func (t *ToneMeter) Hz() float64 { return t.m.hz() }

// LevelDBFS is the level of the last payload.
func (t *ToneMeter) LevelDBFS() float64 { return t.m.levelDBFS }
