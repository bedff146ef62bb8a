package scanner

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// Report is what one run saw.
type Report struct {
	Mode     string      `json:"mode"`
	Target   string      `json:"target"`
	Attempts int         `json:"attempts"`
	Requests int         `json:"requests"`
	Statuses map[int]int `json:"statuses"` // final status code -> count
	// Silent counts attempts with no answer at all: a dropped (blocked)
	// attacker sees exactly this.
	Silent int `json:"silent"`
	// LastAnswered is the attempt number (1-based) of the last attempt that
	// got any answer; 0 if none did. A block shows as LastAnswered far below
	// Attempts.
	LastAnswered int `json:"last_answered"`
	// Stale counts challenges with stale=true (replay mode): the server
	// knew the nonce had been used.
	Stale int `json:"stale,omitempty"`
	// Cracked is the password that got a 200, if one did.
	Cracked  string        `json:"cracked,omitempty"`
	Servers  []string      `json:"servers,omitempty"` // User-Agent/Server headers seen
	Duration time.Duration `json:"duration_ns"`
}

// Write prints the report for people.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%s against %s: %d attempts (%d requests) in %s\n", r.Mode, r.Target, r.Attempts, r.Requests, r.Duration.Round(time.Millisecond))
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  %d answers: %d\n", c, r.Statuses[c])
	}
	fmt.Fprintf(w, "  no answer: %d\n", r.Silent)
	if r.Silent > 0 && r.LastAnswered < r.Attempts {
		fmt.Fprintf(w, "  answers stopped after attempt %d: blocked (or the server is gone)\n", r.LastAnswered)
	}
	if r.Stale > 0 {
		fmt.Fprintf(w, "  challenged with stale=true: %d (the server knows that nonce was used: replay refused)\n", r.Stale)
	}
	if r.Mode == ModeReplay && r.Statuses[200] > 0 {
		fmt.Fprintf(w, "  REPLAY ACCEPTED: %d answers 200 to credentials copied off the wire\n", r.Statuses[200])
	}
	for _, s := range r.Servers {
		fmt.Fprintf(w, "  server says: %s\n", s)
	}
	if r.Cracked != "" {
		fmt.Fprintf(w, "  PASSWORD FOUND: %q\n", r.Cracked)
	}
}
