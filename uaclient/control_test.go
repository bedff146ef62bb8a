package uaclient

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/siplab/siplab/internal/ctl"
)

// serveControl serves p's control API on a socket in a temp dir.
func serveControl(t *testing.T, p *Phone) *Control {
	t.Helper()
	path := filepath.Join(t.TempDir(), p.Name()+".sock")
	ln, err := ctl.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ctl.ServeListener(ctx, ln, p.Handler())
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return NewControl(path)
}

func TestControlAPI(t *testing.T) {
	alice, bob := pair(t, nil, nil)
	ac, bc := serveControl(t, alice), serveControl(t, bob)
	ctx := testCtx(t)

	st, err := ac.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "alice" || st.Local != alice.Addr().String() || st.Settings["rport"] != "on" {
		t.Fatalf("status %+v", st)
	}
	if _, err := ac.Set(ctx, "rport", "off"); err != nil {
		t.Fatal(err)
	}
	if v, _ := alice.Get("rport"); v != "off" {
		t.Fatalf("rport %s after set over the socket", v)
	}

	// Errors come back with an HTTP status that says whose fault it is.
	errTests := []struct {
		name   string
		do     func() error
		status int
	}{
		{"unknown setting", func() error { _, err := ac.Set(ctx, "colour", "red"); return err }, http.StatusBadRequest},
		{"bad value", func() error { _, err := ac.Set(ctx, "keepalive", "sometimes"); return err }, http.StatusBadRequest},
		{"answer with no call", func() error { _, err := ac.Verb(ctx, "answer", CallRequest{}); return err }, http.StatusNotFound},
		{"hangup unknown call", func() error { _, err := ac.Verb(ctx, "hangup", CallRequest{Call: "42"}); return err }, http.StatusNotFound},
		{"bad target", func() error { _, err := ac.Call(ctx, "a b"); return err }, http.StatusBadRequest},
		{"bad wait", func() error {
			_, err := ac.Wait(ctx, WaitRequest{Condition: "call-state", State: "dancing"})
			return err
		}, http.StatusBadRequest},
		{"unknown field", func() error { return ac.Post(ctx, "/call", map[string]string{"targte": "bob"}, nil) }, http.StatusBadRequest},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			var ce *ctl.Error
			if err := tt.do(); !errors.As(err, &ce) || ce.Status != tt.status {
				t.Fatalf("err %v, want HTTP %d", err, tt.status)
			}
		})
	}

	call, err := ac.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Wait(ctx, WaitRequest{Condition: "call-state", State: "ringing", Timeout: "10s"}); err != nil {
		t.Fatal(err)
	}
	ans, err := bc.Verb(ctx, "answer", CallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ans.State != StateConfirmed {
		t.Fatalf("answer returned state %s", ans.State)
	}
	if _, err := ac.Wait(ctx, WaitRequest{Condition: "call-state", State: "confirmed", Call: call.ID}); err != nil {
		t.Fatal(err)
	}
	// Cancelling an answered call is a state error, not a crash.
	var ce *ctl.Error
	if _, err := ac.Verb(ctx, "cancel", CallRequest{Call: call.ID}); !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Fatalf("cancel of a confirmed call: %v", err)
	}
	end, err := ac.Verb(ctx, "hangup", CallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if end.State != StateTerminated || end.EndReason != "BYE sent, 200 OK" {
		t.Fatalf("hangup returned %+v", end)
	}
}

// Every verb the CLI uses has a route in one of the tables: a path no
// table serves is the mux's bare 404, never a phone's answer.
func TestControlRoutesServeEveryVerb(t *testing.T) {
	alice, _ := pair(t, nil, nil)
	c := serveControl(t, alice)
	ctx := testCtx(t)
	for _, path := range []string{"/answer", "/reject", "/cancel", "/hangup", "/dtmf", "/hold", "/resume", "/update",
		"/transfer", "/unsubscribe", "/wait"} {
		err := c.Post(ctx, path, CallRequest{Call: "nope"}, nil)
		var ce *ctl.Error
		if path == "/wait" {
			err = c.Post(ctx, path, WaitRequest{Condition: "sideways"}, nil)
		}
		if !errors.As(err, &ce) || ce.Message == "404 page not found" || ce.Status >= 500 {
			t.Errorf("POST %s: %v, want the phone's own refusal", path, err)
		}
	}
	for _, path := range []string{"/status", "/settings"} {
		if err := c.Get(ctx, path, nil); err != nil {
			t.Errorf("GET %s: %v", path, err)
		}
	}
	if err := c.Post(ctx, "/nope", nil, nil); err == nil || err.Error() != "404 page not found" {
		t.Errorf("POST /nope: %v, want the mux's 404", err)
	}
}
