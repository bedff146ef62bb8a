package siptest

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a settable time source for a daemon under test (its
// Config.Now): a test moves time on with Advance instead of sleeping.
type Clock struct{ ns atomic.Int64 }

// NewClock is a Clock standing at start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *Clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// LogBuffer collects what a daemon (or a child process) writes from its
// goroutines (an io.Writer for its slog handler or its stdout), for tests
// that check its log lines or print them when they fail.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything logged so far (for a failing test's message).
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines logged so far that contain substr.
func (l *LogBuffer) Lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}
