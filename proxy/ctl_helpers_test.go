package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/siplab/siplab/internal/ctl"
)

// serveControl serves p's control API on a real ctl socket for the test
// and returns a caller: status code and body of one request (in is nil
// for a GET).
func serveControl(t *testing.T, p *Proxy) func(path string, in any) (int, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	stop, err := ctl.Start(sock, p.Handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("control socket: %v", err)
		}
	})
	c := ctl.Client{Socket: sock}
	return func(path string, in any) (int, string) {
		t.Helper()
		var out json.RawMessage
		if in == nil {
			err = c.Get(context.Background(), path, &out)
		} else {
			err = c.Post(context.Background(), path, in, &out)
		}
		var ce *ctl.Error
		if errors.As(err, &ce) {
			return ce.Status, ce.Message
		}
		if err != nil {
			t.Fatal(err)
		}
		return http.StatusOK, string(out)
	}
}
