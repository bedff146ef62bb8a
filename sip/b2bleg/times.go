package b2bleg

import "time"

// Times is a back-to-back call's timeline: when it started, was answered
// and ended, who ended it and why. A call keeps one (under its owner's
// lock) and its status embeds it, so every B2BUA's status says it in the
// same JSON.
type Times struct {
	Started  time.Time `json:"started"`
	Answered time.Time `json:"answered,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	// EndedBy is the side that ended the call, EndReason why.
	EndedBy   string `json:"ended_by,omitempty"`
	EndReason string `json:"end_reason,omitempty"`
}

// End records that the call ended at now, ended by whom and why.
func (t *Times) End(now time.Time, by, why string) {
	t.Ended, t.EndedBy, t.EndReason = now, by, why
}

// EndLocked ends a call once, its owner's lock held: unless *state
// already is ended, it sets it, records when, by whom and why in t and
// marks the legs terminated, and reports true. Racing ends (a BYE from
// each side, a CANCEL, a shutdown) all call it; only the first may
// release the call's media and log it. S is the owner's call state type.
func EndLocked[S comparable](state *S, ended S, t *Times, by, why string, legs ...*Leg) bool {
	if *state == ended {
		return false
	}
	*state = ended
	t.End(time.Now(), by, why)
	TerminateLocked(legs...)
	return true
}
