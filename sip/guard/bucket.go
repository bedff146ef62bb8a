package guard

import (
	"math"
	"time"
)

// class is a method class with its own token bucket per source.
type class uint8

const (
	classRegister class = iota
	classInvite
	classOther
	classes
	// classFree is ACK and CANCEL: never limited, because dropping them
	// breaks calls already admitted (a 2xx's ACK, stopping a ringing INVITE).
	classFree class = 255
)

// limitedReasons are the rate-limit verdicts, spelled once: a flood is
// refused without allocating.
var limitedReasons = [classes]string{"rate_limited: register", "rate_limited: invite", "rate_limited: other"}

func classOf(method string) class {
	// SIP methods are case-sensitive (RFC 3261 §7.1): "register" is not
	// REGISTER and lands in "other" with everything else.
	switch method {
	case "REGISTER":
		return classRegister
	case "INVITE":
		return classInvite
	case "ACK", "CANCEL":
		return classFree
	}
	return classOther
}

// bucket is a token bucket. The zero value is full: a new source may send
// a burst at once, as a phone booting (REGISTER, SUBSCRIBEs) does.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one token if there is one; otherwise it says how long until
// there will be. A clock that goes backwards refills nothing.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	limit := float64(burst)
	switch {
	case b.last.IsZero():
		b.tokens, b.last = limit, now
	case now.After(b.last):
		b.tokens += rate * now.Sub(b.last).Seconds()
		b.last = now
	}
	b.tokens = min(b.tokens, limit) // also after SetConfig lowered Burst
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	// Rounded up to the millisecond, so retrying exactly then succeeds.
	wait := time.Duration(math.Ceil((1 - b.tokens) / rate * 1000))
	return false, wait * time.Millisecond
}
