package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/siplab/siplab/sip/location"
)

// TestLocationHTTP serves the real registrar through location.NewHandler
// and reads it back with location.HTTPClient, as a proxy in another
// process does.
func TestLocationHTTP(t *testing.T) {
	r := newRegistrar(t, baseConfig(t, newClock()))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	if res, _ := p.register("Contact: <sip:alice@192.168.1.50:5060>"); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	srv := httptest.NewServer(location.NewHandler(r))
	defer srv.Close()
	var c location.Service = &location.HTTPClient{BaseURL: srv.URL + "/"}
	ctx := context.Background()

	bs, err := c.Lookup(ctx, "sip:alice@siplab.test")
	if err != nil || len(bs) != 1 {
		t.Fatalf("Lookup: %v %+v", err, bs)
	}
	want, _ := r.Lookup(ctx, "alice")
	if bs[0].Source != want[0].Source || bs[0].Contact != want[0].Contact || !bs[0].Expires.Equal(want[0].Expires) || bs[0].Transport != "udp" {
		t.Fatalf("over HTTP %+v\nin process %+v", bs[0], want[0])
	}
	if bs, err := c.Lookup(ctx, "bob"); err != nil || len(bs) != 0 {
		t.Fatalf("Lookup(bob): %v %+v, want empty", err, bs)
	}
	if _, err := c.Lookup(ctx, "zed"); !errors.Is(err, location.ErrUnknownUser) {
		t.Fatalf("Lookup(zed): %v, want ErrUnknownUser", err)
	}

	// The raw JSON shapes the lab's status views read.
	res, err := http.Get(srv.URL + "/v1/location/" + url.PathEscape("bob"))
	if err != nil {
		t.Fatal(err)
	}
	var lr struct {
		AOR      string            `json:"aor"`
		Bindings []json.RawMessage `json:"bindings"`
	}
	json.NewDecoder(res.Body).Decode(&lr)
	res.Body.Close()
	if res.StatusCode != 200 || lr.AOR != "sip:bob@siplab.test" || lr.Bindings == nil || len(lr.Bindings) != 0 {
		t.Fatalf("GET bob: %d %+v", res.StatusCode, lr)
	}
	res, err = http.Get(srv.URL + "/v1/location/zed")
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error string }
	json.NewDecoder(res.Body).Decode(&e)
	res.Body.Close()
	if res.StatusCode != 404 || e.Error == "" || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET zed: %d %+v", res.StatusCode, e)
	}
	all, err := c.(*location.HTTPClient).Bindings(ctx)
	if err != nil || len(all) != 1 || all[0].AOR != "sip:alice@siplab.test" {
		t.Fatalf("Bindings: %v %+v", err, all)
	}
}
