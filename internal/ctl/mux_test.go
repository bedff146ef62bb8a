package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/runtest"
)

// NewMux serves the three shared routes with what their functions return,
// hands POST /reset the request's context, and leaves the mux open for
// the daemon's own routes.
func TestNewMux(t *testing.T) {
	type status struct {
		Calls int `json:"calls"`
	}
	var resetCtxLive bool
	mux := NewMux(
		func() status { return status{Calls: 3} },
		func() map[string]string { return map[string]string{"latch": "on"} },
		func(ctx context.Context) []string {
			resetCtxLive = ctx.Err() == nil
			return []string{"latch"}
		})
	mux.HandleFunc("POST /echo", testMux().ServeHTTP)

	ln, err := Listen(t.TempDir() + "/m.sock")
	if err != nil {
		t.Fatal(err)
	}
	runtest.Serve(t, func(ctx context.Context) error { return ServeListener(ctx, ln, mux) })
	c := Client{Socket: ln.Addr().String(), Timeout: 5 * time.Second}
	ctx := context.Background()

	var st status
	if err := c.Get(ctx, "/status", &st); err != nil || st.Calls != 3 {
		t.Errorf("GET /status = %+v, %v; want 3 calls", st, err)
	}
	var set map[string]string
	if err := c.Get(ctx, "/settings", &set); err != nil || set["latch"] != "on" {
		t.Errorf("GET /settings = %v, %v; want latch=on", set, err)
	}
	var restored []string
	if err := c.Post(ctx, "/reset", nil, &restored); err != nil || len(restored) != 1 || restored[0] != "latch" {
		t.Errorf("POST /reset = %v, %v; want [latch]", restored, err)
	}
	if !resetCtxLive {
		t.Error("reset did not get the live request context")
	}
	var out echoOut
	if err := c.Post(ctx, "/echo", echoIn{Name: "bob"}, &out); err != nil || out.Hello != "bob" {
		t.Errorf("a daemon's own route: %+v, %v", out, err)
	}
	if err := c.Post(ctx, "/status", nil, &st); err == nil {
		t.Error("POST /status answered: the shared routes must keep their methods")
	}
}

// SetHandler answers 200 with the settings in force, 400 for a refused
// value or a bad body, and 404 for an unknown name when the daemon names
// its unknown-setting error.
func TestSetHandler(t *testing.T) {
	errUnknown := errors.New("unknown setting")
	errBad := errors.New("bad value")
	settings := map[string]string{"latch": "on"}
	set := func(name, value string) (map[string]string, error) {
		switch {
		case name != "latch":
			return nil, fmt.Errorf("%w: %q", errUnknown, name)
		case value != "on" && value != "off":
			return nil, fmt.Errorf("%w: %q", errBad, value)
		}
		settings[name] = value
		return settings, nil
	}
	for _, tt := range []struct {
		body    string
		unknown error
		code    int
		want    string
	}{
		{`{"name":"latch","value":"off"}`, errUnknown, http.StatusOK, `"latch": "off"`},
		{`{"name":"latch","value":"maybe"}`, errUnknown, http.StatusBadRequest, "bad value"},
		{`{"name":"colour","value":"red"}`, errUnknown, http.StatusNotFound, "unknown setting"},
		{`{"name":"colour","value":"red"}`, nil, http.StatusBadRequest, "unknown setting"},
		{`{"name":`, errUnknown, http.StatusBadRequest, ""},
	} {
		rec := httptest.NewRecorder()
		SetHandler(set, tt.unknown)(rec, httptest.NewRequest(http.MethodPost, "/set", strings.NewReader(tt.body)))
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s (unknown %v): %d %s; want %d with %q", tt.body, tt.unknown, rec.Code, rec.Body, tt.code, tt.want)
		}
	}
}
