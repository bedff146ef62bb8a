package climain

import (
	"os"
	"runtime/debug"
)

// TuneGC sets the garbage collector of a daemon that allocates per message
// (the proxy, the registrar): collect when the heap has grown by percent
// (Go's default is 100) under a soft memory limit of limit bytes, near
// which it collects as often as it must. A SIP forward allocates ~9 kB
// per message and most of it dies at once, so at the default the collector
// took ~19 % of the proxy's CPU (bench/README.md, profile); the limit
// keeps what the looser pacing costs in memory bounded. GOGC and
// GOMEMLIMIT in the environment win.
func TuneGC(percent int, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}
