package registrar

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/siplab/siplab/sip/location"
)

func TestRegisterWithAuth(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")

	first := p.send(p.request("Contact: <sip:alice@127.0.0.1:5999>"))
	if first.StatusCode != sip.StatusUnauthorized {
		t.Fatalf("unauthenticated REGISTER: %d, want 401", first.StatusCode)
	}
	chal, err := digest.ParseChallenge(first.GetHeader("WWW-Authenticate").Value())
	if err != nil || chal.Realm != domain || !chal.SupportsQOP("auth") || chal.Stale {
		t.Fatalf("challenge %v: %+v", err, chal)
	}
	if bs, _ := r.Lookup(context.Background(), "alice"); len(bs) != 0 {
		t.Fatalf("binding stored before authentication: %+v", bs)
	}
	res := p.send(p.request("Contact: <sip:alice@127.0.0.1:5999>", answer(t, first, "alice", "secret", 1)))
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("authenticated REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if got := contacts(res); got["sip:alice@127.0.0.1:5999"] != 3600 || len(got) != 1 {
		t.Fatalf("200 contacts %v, want the one binding with expires=3600", got)
	}
	if d := res.GetHeader("Date"); d == nil || !strings.HasSuffix(d.Value(), "GMT") {
		t.Fatalf("Date header %v", d)
	}
	bs, err := r.Lookup(context.Background(), "sip:alice@siplab.test")
	if err != nil || len(bs) != 1 {
		t.Fatalf("Lookup: %v %+v", err, bs)
	}
	b := bs[0]
	if b.AOR != "sip:alice@siplab.test" || b.ContactURI != "sip:alice@127.0.0.1:5999" || b.Source != p.addr() ||
		b.Transport != "udp" || b.Expires != clk.Now().Add(time.Hour) || b.CallID != p.callID || b.CSeq != p.cseq {
		t.Fatalf("binding %+v (phone at %v)", b, p.addr())
	}
}

func TestAuthFailures(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	addr := serveRegistrar(t, r)

	t.Run("wrong password is challenged again, not forbidden", func(t *testing.T) {
		p := newPhone(t, addr, "alice", "wrong")
		res, _ := p.register("Contact: <sip:alice@127.0.0.1:5999>")
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("%d, want 401", res.StatusCode)
		}
		if chal, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value()); chal.Stale {
			t.Fatal("wrong password must not be stale")
		}
	})
	t.Run("replayed authorization", func(t *testing.T) {
		p := newPhone(t, addr, "alice", "secret")
		res, auth := p.register("Contact: <sip:alice@127.0.0.1:5998>")
		if res.StatusCode != sip.StatusOK {
			t.Fatalf("first: %d", res.StatusCode)
		}
		// The same Authorization in a new transaction (as an eavesdropper
		// would send it).
		res = p.send(p.request("Contact: <sip:alice@127.0.0.1:5997>", auth))
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("replay: %d, want 401", res.StatusCode)
		}
		if chal, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value()); !chal.Stale {
			t.Fatal("replay of good credentials should be stale=true")
		}
		bs, _ := r.Lookup(context.Background(), "alice")
		for _, b := range bs {
			if b.ContactURI == "sip:alice@127.0.0.1:5997" {
				t.Fatal("replayed REGISTER created a binding")
			}
		}
	})
	t.Run("stale nonce", func(t *testing.T) {
		p := newPhone(t, addr, "alice", "secret")
		first := p.send(p.request("Contact: <sip:alice@127.0.0.1:5996>"))
		clk.Advance(6 * time.Minute)
		res := p.send(p.request("Contact: <sip:alice@127.0.0.1:5996>", answer(t, first, "alice", "secret", 1)))
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("%d, want 401", res.StatusCode)
		}
		chal, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		if !chal.Stale {
			t.Fatal("expired nonce with the right password must be stale=true")
		}
		// The phone retries with the new nonce, silently.
		res = p.send(p.request("Contact: <sip:alice@127.0.0.1:5996>", answer(t, res, "alice", "secret", 1)))
		if res.StatusCode != sip.StatusOK {
			t.Fatalf("retry after stale: %d", res.StatusCode)
		}
	})
	t.Run("blocked user", func(t *testing.T) {
		p := newPhone(t, addr, "carol", "blocked-pw")
		if res, _ := p.register("Contact: <sip:carol@127.0.0.1:5999>"); res.StatusCode != sip.StatusForbidden {
			t.Fatalf("%d, want 403", res.StatusCode)
		}
	})
	// aliceRegisters has alice, with her own credentials, register the
	// AOR of user and returns the final response.
	aliceRegisters := func(t *testing.T, user string) *sip.Response {
		p := newPhone(t, addr, "alice", "secret")
		req := p.request("Contact: <sip:alice@127.0.0.1:5999>")
		req.To().Address.User = user
		res := p.send(req)
		req = p.request("Contact: <sip:alice@127.0.0.1:5999>", answer(t, res, "alice", "secret", 1))
		req.To().Address.User = user
		return p.send(req)
	}
	t.Run("someone else's AOR", func(t *testing.T) {
		if res := aliceRegisters(t, "bob"); res.StatusCode != sip.StatusForbidden {
			t.Fatalf("%d, want 403", res.StatusCode)
		}
		if bs, _ := r.Lookup(context.Background(), "bob"); len(bs) != 0 {
			t.Fatal("alice registered bob")
		}
	})
	t.Run("unprovisioned AOR", func(t *testing.T) {
		if res := aliceRegisters(t, "zed"); res.StatusCode != sip.StatusNotFound {
			t.Fatalf("%d, want 404", res.StatusCode)
		}
	})
}

// TestBindings walks one phone through the life of its registrations.
func TestBindings(t *testing.T) {
	clk := newClock()
	cfg := baseConfig(t, clk)
	cfg.MaxExpires = 2 * time.Hour
	r := newRegistrar(t, cfg)
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	other := newPhone(t, p.registrar, "alice", "secret") // a second device, its own Call-ID

	steps := []struct {
		name  string
		ph    *phone
		hdrs  []string
		code  int
		want  map[string]int // contacts in the response (when 200)
		check func(t *testing.T, res *sip.Response)
	}{
		{name: "two contacts, per-contact and header expires", ph: p,
			hdrs: []string{"Contact: <sip:alice@192.0.2.1:5060>;expires=600, <sip:alice@192.0.2.2:5060>;q=0.5", "Expires: 1200"},
			code: 200, want: map[string]int{"sip:alice@192.0.2.1:5060": 600, "sip:alice@192.0.2.2:5060": 1200}},
		{name: "second device adds a third", ph: other,
			hdrs: []string{"Contact: <sip:alice@192.0.2.3:5060>;q=1"},
			code: 200, want: map[string]int{"sip:alice@192.0.2.1:5060": 600, "sip:alice@192.0.2.2:5060": 1200, "sip:alice@192.0.2.3:5060": 3600}},
		{name: "query lists all, changes nothing", ph: p, code: 200,
			want: map[string]int{"sip:alice@192.0.2.1:5060": 600, "sip:alice@192.0.2.2:5060": 1200, "sip:alice@192.0.2.3:5060": 3600}},
		{name: "refresh with the same Call-ID and higher CSeq; clamp to max", ph: p,
			hdrs: []string{"Contact: <sip:alice@192.0.2.1:5060>;expires=999999"},
			code: 200, want: map[string]int{"sip:alice@192.0.2.1:5060": 7200, "sip:alice@192.0.2.2:5060": 1200, "sip:alice@192.0.2.3:5060": 3600}},
		{name: "too brief", ph: p, hdrs: []string{"Contact: <sip:alice@192.0.2.4:5060>;expires=30"}, code: 423,
			check: func(t *testing.T, res *sip.Response) {
				if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
					t.Fatalf("Min-Expires %v", h)
				}
			}},
		{name: "expires=0 removes one", ph: p, hdrs: []string{"Contact: <sip:alice@192.0.2.2:5060>;expires=0"},
			code: 200, want: map[string]int{"sip:alice@192.0.2.1:5060": 7200, "sip:alice@192.0.2.3:5060": 3600}},
		{name: "star with other contacts", ph: p, hdrs: []string{"Contact: *", "Contact: <sip:alice@192.0.2.9:5060>", "Expires: 0"}, code: 400},
		{name: "star with non-zero expires", ph: p, hdrs: []string{"Contact: *", "Expires: 60"}, code: 400},
		{name: "star without expires", ph: p, hdrs: []string{"Contact: *"}, code: 400},
		{name: "bad expires", ph: p, hdrs: []string{"Contact: <sip:alice@192.0.2.9:5060>", "Expires: soon"}, code: 400},
		{name: "bad q", ph: p, hdrs: []string{"Contact: <sip:alice@192.0.2.9:5060>;q=2"}, code: 400},
		{name: "star removes all", ph: p, hdrs: []string{"Contact: *", "Expires: 0"}, code: 200, want: map[string]int{}},
	}
	for _, s := range steps {
		res, _ := s.ph.register(s.hdrs...)
		if res.StatusCode != s.code {
			t.Fatalf("%s: %d %s, want %d", s.name, res.StatusCode, res.Reason, s.code)
		}
		if s.want != nil {
			got := contacts(res)
			if len(got) != len(s.want) {
				t.Fatalf("%s: contacts %v, want %v", s.name, got, s.want)
			}
			for k, v := range s.want {
				if got[k] != v {
					t.Fatalf("%s: contacts %v, want %v", s.name, got, s.want)
				}
			}
			bs, err := r.Lookup(context.Background(), "alice")
			if err != nil || len(bs) != len(s.want) {
				t.Fatalf("%s: Lookup %v %d bindings, want %d", s.name, err, len(bs), len(s.want))
			}
		}
		if s.check != nil {
			s.check(t, res)
		}
	}
}

func TestOutOfOrderCSeq(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	if res, _ := p.register("Contact: <sip:alice@192.0.2.1:5060>"); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	// Same Call-ID, CSeq not higher than stored: §10.3 step 7 aborts.
	p.cseq -= 10
	res, _ := p.register("Contact: <sip:alice@192.0.2.1:5060>;expires=0")
	if res.StatusCode != sip.StatusInternalServerError {
		t.Fatalf("%d, want 500", res.StatusCode)
	}
	if bs, _ := r.Lookup(context.Background(), "alice"); len(bs) != 1 {
		t.Fatal("stale REGISTER removed the binding")
	}
}

// TestSeenVersusWritten: a phone behind NAT writes its private address in
// Contact; the registrar keeps it and also where the packet came from.
func TestSeenVersusWritten(t *testing.T) {
	r := newRegistrar(t, baseConfig(t, newClock()))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	res, _ := p.register(`Contact: "Alice" <sip:alice@192.168.1.50:5060;transport=udp>;+sip.instance="<urn:uuid:1>"`)
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	bs, _ := r.Lookup(context.Background(), "alice")
	if len(bs) != 1 {
		t.Fatalf("%d bindings", len(bs))
	}
	b := bs[0]
	if b.ContactURI != "sip:alice@192.168.1.50:5060;transport=udp" || !strings.Contains(b.Contact, `"Alice"`) ||
		!strings.Contains(b.Contact, "+sip.instance") {
		t.Fatalf("written contact lost: %q / %q", b.Contact, b.ContactURI)
	}
	if b.Source != p.addr() || b.Transport != "udp" {
		t.Fatalf("seen address %v/%s, want %v/udp", b.Source, b.Transport, p.addr())
	}
}

func TestPathReceived(t *testing.T) {
	const path = "Path: <sip:10.0.0.10:5060;lr;received=203.0.113.2:40000;rtransport=tcp>, <sip:10.0.0.11;lr>"
	tests := []struct {
		name    string
		trusted []netip.Prefix
		hdrs    []string
		seen    func(p *phone) netip.AddrPort
		tp      string
		echo    bool
	}{
		{name: "trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			hdrs: []string{path, "Supported: path"}, seen: func(*phone) netip.AddrPort { return netip.MustParseAddrPort("203.0.113.2:40000") },
			tp: "tcp", echo: true},
		{name: "trusted proxy, phone without path support", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			hdrs: []string{path}, seen: func(*phone) netip.AddrPort { return netip.MustParseAddrPort("203.0.113.2:40000") }, tp: "tcp"},
		{name: "untrusted source", trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			hdrs: []string{path, "Supported: path"}, seen: (*phone).addr, tp: "udp", echo: true},
		{name: "trusted, no received", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			hdrs: []string{"Path: <sip:10.0.0.10;lr>"}, seen: (*phone).addr, tp: "udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t, newClock())
			cfg.TrustedProxies = tt.trusted
			r := newRegistrar(t, cfg)
			p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
			res, _ := p.register(append(tt.hdrs, "Contact: <sip:alice@192.168.1.50:5060>")...)
			if res.StatusCode != 200 {
				t.Fatalf("%d", res.StatusCode)
			}
			if echoed := res.GetHeader("Path") != nil; echoed != tt.echo {
				t.Fatalf("Path echoed %v, want %v", echoed, tt.echo)
			}
			bs, _ := r.Lookup(context.Background(), "alice")
			if len(bs) != 1 {
				t.Fatalf("%d bindings", len(bs))
			}
			if bs[0].Source != tt.seen(p) || bs[0].Transport != tt.tp {
				t.Fatalf("seen %v/%s, want %v/%s", bs[0].Source, bs[0].Transport, tt.seen(p), tt.tp)
			}
			if len(bs[0].Path) != 1 && len(bs[0].Path) != 2 || !strings.HasPrefix(bs[0].Path[0], "sip:10.0.0.10") {
				t.Fatalf("Path not stored: %q", bs[0].Path)
			}
		})
	}
}

func TestOtherMethods(t *testing.T) {
	r := newRegistrar(t, baseConfig(t, newClock()))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	for _, tt := range []struct {
		method sip.RequestMethod
		code   int
	}{{sip.OPTIONS, 200}, {sip.INVITE, 405}, {sip.MESSAGE, 405}} {
		req := p.request()
		req.Method = tt.method
		req.CSeq().MethodName = tt.method
		res := p.send(req)
		if res.StatusCode != tt.code {
			t.Fatalf("%s: %d, want %d", tt.method, res.StatusCode, tt.code)
		}
		if h := res.GetHeader("Allow"); h == nil || !strings.Contains(h.Value(), "REGISTER") {
			t.Fatalf("%s: Allow %v", tt.method, h)
		}
	}
}

func TestLookup(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	if res, _ := p.register("Contact: <sip:alice@192.0.2.1>;expires=120;q=0.1", "Contact: <sip:alice@192.0.2.2>;expires=300;q=0.9"); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	ctx := context.Background()
	for _, key := range []string{"alice", "alice@siplab.test", "sip:alice@siplab.test", "<sip:alice@SIPLAB.test>"} {
		bs, err := r.Lookup(ctx, key)
		if err != nil || len(bs) != 2 || bs[0].ContactURI != "sip:alice@192.0.2.2" {
			t.Fatalf("Lookup(%q) = %v, %+v (want q=0.9 first)", key, err, bs)
		}
	}
	for _, key := range []string{"zed", "sip:alice@other.test", "alice@other.test", "tel:+1555"} {
		if _, err := r.Lookup(ctx, key); !errors.Is(err, location.ErrUnknownUser) {
			t.Fatalf("Lookup(%q) err = %v, want ErrUnknownUser", key, err)
		}
	}
	if bs, err := r.Lookup(ctx, "bob"); err != nil || bs == nil || len(bs) != 0 {
		t.Fatalf("Lookup(bob) = %v, %#v: want empty, non-nil", err, bs)
	}
	// Expired bindings are never returned, and are collected.
	clk.Advance(121 * time.Second)
	if bs, _ := r.Lookup(ctx, "alice"); len(bs) != 1 {
		t.Fatalf("after 121s: %d bindings, want 1", len(bs))
	}
	clk.Advance(180 * time.Second)
	if bs, _ := r.Lookup(ctx, "alice"); len(bs) != 0 {
		t.Fatalf("after 301s: %d bindings, want 0", len(bs))
	}
	if n := r.store.gc(clk.Now()); n != 2 {
		t.Fatalf("gc dropped %d, want 2", n)
	}
	if _, n := r.store.count(); n != 0 {
		t.Fatalf("%d bindings left after gc", n)
	}
}

func TestRegisterOverTCP(t *testing.T) {
	r := newRegistrar(t, baseConfig(t, newClock()))
	p := newPhone(t, serveRegistrar(t, r), "alice", "secret")
	c, err := p.ep.Client("tcp")
	if err != nil {
		t.Fatal(err)
	}
	p.client, p.transport = c, "tcp"
	res, _ := p.register("Contact: <sip:alice@192.168.1.50:5060;transport=tcp>")
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	bs, _ := r.Lookup(context.Background(), "alice")
	if len(bs) != 1 || bs[0].Transport != "tcp" || bs[0].Source.Addr() != netip.MustParseAddr("127.0.0.1") || bs[0].Source.Port() == 0 {
		t.Fatalf("%+v", bs)
	}
}
