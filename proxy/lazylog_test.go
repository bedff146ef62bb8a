package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The lazy handler writes what slog's own would: With attributes first,
// then the record's, groups kept.
func TestLazyAttrsSameOutput(t *testing.T) {
	var want, got bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	plain := slog.New(slog.NewTextHandler(&want, opts))
	lazy := slog.New(&lazyAttrs{h: slog.NewTextHandler(&got, opts)})
	for _, l := range []*slog.Logger{plain, lazy} {
		r := l.With("call_id", "c1", "method", "INVITE")
		r.Info("forwarded", "dest", "127.0.0.1:5060")
		r.Debug("not written")
		r.With("k", 1).WithGroup("g").Warn("grouped", "x", 2)
	}
	if got.String() != want.String() {
		t.Fatalf("lazy handler wrote\n%s\nslog's own\n%s", got.String(), want.String())
	}
	if !strings.Contains(got.String(), `call_id=c1 method=INVITE dest=127.0.0.1:5060`) {
		t.Fatalf("unexpected output %s", got.String())
	}
}
