// Package phonetest starts real uaclient phones for the tests of the
// daemons they call through (the PBX, the SBC), stopped with the test.
package phonetest

import (
	"context"
	"testing"
	"time"

	"github.com/siplab/siplab/uaclient"
)

// Start makes and starts a phone on ctx; when the test ends it hangs up
// (2s at most) and closes.
func Start(t testing.TB, ctx context.Context, cfg uaclient.Config) *uaclient.Phone {
	t.Helper()
	ph, err := uaclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		ph.Shutdown(sctx)
		ph.Close()
	})
	if err := ph.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ph
}
