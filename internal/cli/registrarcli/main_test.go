package registrarcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args  []string
		check func(*options) bool
		err   error
	}{
		{[]string{"-realm", "lab", "-users", "u"}, func(o *options) bool { return o.minExp == time.Minute && o.data == "registrar-data" }, nil},
		{[]string{"-domain", "lab", "-users", "u", "-min-expires", "30", "-max-expires", "2h"}, func(o *options) bool {
			return o.minExp == 30*time.Second && o.maxExp == 2*time.Hour
		}, nil},
		{[]string{"-realm", "lab", "-users", "u", "-trusted-proxy", "10.0.0.10, 192.168.0.0/16"}, func(o *options) bool {
			return len(o.trusted) == 2 && o.trusted[0] == netip.MustParsePrefix("10.0.0.10/32")
		}, nil},
		{[]string{"-users", "u"}, nil, errUsage},
		{[]string{"-realm", "lab"}, nil, errUsage},
		{[]string{"-realm", "lab", "-users", "u", "extra"}, nil, errUsage},
		{[]string{"-realm", "lab", "-users", "u", "-trusted-proxy", "nope"}, nil, nil},
		{[]string{"-h"}, nil, flag.ErrHelp},
	}
	for _, tt := range tests {
		o, err := parseFlags(tt.args, io.Discard)
		switch {
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("%q: err %v, want %v", tt.args, err, tt.err)
		case tt.err == nil && tt.check == nil && err == nil:
			t.Errorf("%q: accepted", tt.args)
		case tt.check != nil && (err != nil || !tt.check(o)):
			t.Errorf("%q: %v %+v", tt.args, err, o)
		}
	}
}

// TestDaemon runs the daemon as main does, registers a phone with sipgo's
// own digest client, reads the location API, restarts on the same data
// directory and finds the binding again.
func TestDaemon(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice secret\n"), 0o600)
	args := []string{"-sip", "127.0.0.1:0", "-http", "127.0.0.1:0", "-realm", "siplab.test",
		"-users", users, "-data", filepath.Join(dir, "data"), "-log-level", "warn"}

	type addrs struct {
		sip  netip.AddrPort
		http net.Addr
	}
	start := func() (netip.AddrPort, string, func()) {
		a, stop := runtest.Start(t, func(ctx context.Context, ready func(addrs)) error {
			return run(ctx, args, io.Discard, func(s netip.AddrPort, h net.Addr) { ready(addrs{s, h}) })
		})
		return a.sip, "http://" + a.http.String(), stop
	}

	sipAddr, base, stop := start()
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer ep.Close()
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client, _ := ep.Client("udp")
	// The Request-URI names the registrar by its address, as a phone
	// configured with an IP does.
	ruri := sip.Uri{Scheme: "sip", Host: sipAddr.Addr().String(), Port: int(sipAddr.Port())}
	req := sip.NewRequest(sip.REGISTER, ruri)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "siplab.test"}})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "siplab.test"}, Params: sip.NewParams()}
	from.Params.Add("tag", "x")
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@192.168.1.50:5060>"))
	res, err := client.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %v %v", err, res)
	}
	res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "alice", Password: "secret"})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("authenticated REGISTER: %v %v", err, res)
	}

	lookup := func(base string) []location.Binding {
		bs, err := (&location.HTTPClient{BaseURL: base}).Lookup(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	if bs := lookup(base); len(bs) != 1 || bs[0].Source != ep.Addr() {
		t.Fatalf("bindings %+v, want one seen from %v", bs, ep.Addr())
	}
	hres, err := http.Get(base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Bindings int }
	json.NewDecoder(hres.Body).Decode(&st)
	hres.Body.Close()
	if st.Bindings != 1 {
		t.Fatalf("status %+v", st)
	}
	stop()

	_, base, stop = start()
	defer stop()
	if bs := lookup(base); len(bs) != 1 || !strings.Contains(bs[0].Contact, "192.168.1.50") {
		t.Fatalf("after restart: %+v", bs)
	}
}

// TestSetAndUnblock drives the client verbs against a running daemon's
// control socket, as `siplab set registrar ...` does in the lab.
func TestSetAndUnblock(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice secret\n"), 0o600)
	sock := filepath.Join(dir, "r.sock")
	runtest.Start(t, func(ctx context.Context, ready func(struct{})) error {
		return run(ctx, []string{"-sip", "127.0.0.1:0", "-http", "", "-ctl", sock, "-realm", "siplab.test",
			"-users", users, "-data", "", "-log-level", "warn", "-auth-fail-limit", "4", "-guard-trust", "10.0.0.5"},
			io.Discard, func(netip.AddrPort, net.Addr) { ready(struct{}{}) })
	})
	ctx := context.Background()
	var out strings.Builder
	if err := cmdSet(ctx, []string{"auth_fail_limit", "20", "-ctl", sock}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "auth_fail_limit 20, auth_fail_window 1m0s, auth_block_for 5m0s") {
		t.Fatalf("set printed %q", out.String())
	}
	if err := cmdSet(ctx, []string{"-ctl", sock, "auth_block_for", "10m"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"rport", "on"}, {"auth_fail_limit", "lots"}, {"auth_fail_limit"}} {
		if err := cmdSet(ctx, append(bad, "-ctl", sock), io.Discard); err == nil {
			t.Fatalf("set %q accepted", bad)
		}
	}
	out.Reset()
	if err := cmdUnblock(ctx, []string{"203.0.113.66", "-ctl", sock}, &out); err != nil || out.String() != "203.0.113.66 was not blocked\n" {
		t.Fatalf("unblock: %v %q", err, out.String())
	}
	if err := cmdUnblock(ctx, []string{"nope", "-ctl", sock}, io.Discard); err == nil {
		t.Fatal("unblock of a non-address accepted")
	}
	out.Reset()
	if err := status(ctx, []string{"-ctl", sock}, &out); err != nil || !strings.Contains(out.String(), "auth_block_for 10m0s, max_transactions 20000") {
		t.Fatalf("status: %v %q", err, out.String())
	}
}
