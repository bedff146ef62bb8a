package proxy

import (
	"log/slog"
	"os"

	"github.com/emiago/sipgo/sip"
)

// SIPDEBUG=1 go test -v ./proxy/ prints every SIP message sipgo reads and
// writes, with its transport logs.
func init() {
	if os.Getenv("SIPDEBUG") != "" {
		sip.SIPDebug = true
		sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
}
