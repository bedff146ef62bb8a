package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
)

// locationHTTP serves the registrar's location API on a real socket, as
// the registrar daemon does, with two knobs on the watch stream: lag (each
// write waits, as a slow or congested link would) and down (new watch
// requests get 503; CloseClientConnections ends the current one).
type locationHTTP struct {
	srv  *httptest.Server
	lag  atomic.Int64 // time.Duration
	down atomic.Bool
}

type lagWriter struct {
	http.ResponseWriter
	lag *atomic.Int64
}

func (w lagWriter) Write(b []byte) (int, error) {
	time.Sleep(time.Duration(w.lag.Load()))
	return w.ResponseWriter.Write(b)
}

func (w lagWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func startLocationHTTP(t testing.TB, svc location.Service) *locationHTTP {
	t.Helper()
	l := &locationHTTP{}
	h := location.NewHandler(svc)
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/watch" {
			if l.down.Load() {
				http.Error(w, "down for the test", http.StatusServiceUnavailable)
				return
			}
			w = lagWriter{ResponseWriter: w, lag: &l.lag}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { l.srv.CloseClientConnections(); l.srv.Close() })
	return l
}

// startCache runs a location cache against l until the test ends.
func startCache(t testing.TB, l *locationHTTP, now func() time.Time) *location.Cache {
	t.Helper()
	c := location.NewCache(&location.HTTPClient{BaseURL: l.srv.URL}, quietLogger())
	c.Now = now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// waitCaught waits until c's stream is up and has applied every change
// reg made so far.
func waitCaught(t testing.TB, c *location.Cache, reg *registrar.Registrar) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		st := c.Status()
		if st.Synced && st.Version >= reg.Version() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("location cache not caught up within %s: %+v, registrar at %d", waitFor, st, reg.Version())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cacheSetup is the deployed arrangement on loopback: the real registrar
// (clock now) behind the proxy, the proxy routing by a location cache fed
// from the registrar's HTTP location API.
func cacheSetup(t testing.TB, now func() time.Time) (*registrar.Registrar, netip.AddrPort, *locationHTTP, *location.Cache, netip.AddrPort) {
	reg, regAddr := startRegistrarAt(t, now)
	l := startLocationHTTP(t, reg)
	c := startCache(t, l, now)
	_, px := startProxy(t, Config{Location: c, Registrar: regAddr.String()})
	return reg, regAddr, l, c, px
}

// callReaches sends an INVITE for bob through the proxy and checks that
// it arrives at want (answered 486) and at no other phone in others.
func callReaches(t *testing.T, alice *phone, px netip.AddrPort, want *phone, others ...*phone) {
	t.Helper()
	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "carol@pstn.test", "bob@"+testDomain))
	req, from := want.on(t).request(sip.INVITE)
	want.answer(req, from, 486, "Busy Here", "b")
	mustCode(t, alice.final(sip.INVITE), 486)
	for _, o := range others {
		o.on(t).silent(200*time.Millisecond, isRequest(sip.INVITE), "an INVITE meant for another binding")
	}
}

// A REGISTER through the proxy is visible to the very next call even when
// the watch stream is far behind: the proxy marks the AOR when it relays
// the 200, and the cache asks the registrar until its stream has caught
// up with the registrar's answer. Without the mark the call would go to
// the binding the stream still shows.
func TestLocationCacheReadsItsWrites(t *testing.T) {
	reg, _, l, c, px := cacheSetup(t, time.Now)
	alice, b1, b2 := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3"), newPhone(t, "127.0.0.4")
	c1, c2 := "sip:bob@"+b1.addr.String(), "sip:bob@"+b2.addr.String()

	register(t, b1, px, "bob", "bobpw", c1)
	waitCaught(t, c, reg)
	// The first call after a REGISTER through the proxy asks the
	// registrar (its answer's version proves the stream caught up)...
	before := c.Status()
	callReaches(t, alice, px, b1)
	if st := c.Status(); st.Direct != before.Direct+1 {
		t.Fatalf("first call after the REGISTER: %+v then %+v, want one direct lookup", before, st)
	}
	// ...the next ones are answered from the cache.
	before = c.Status()
	callReaches(t, alice, px, b1)
	if st := c.Status(); st.Hits <= before.Hits || st.Direct != before.Direct {
		t.Fatalf("call with the stream caught up was not answered from the cache: %+v then %+v", before, st)
	}

	l.lag.Store(int64(700 * time.Millisecond))
	t.Run("moved", func(t *testing.T) {
		// One REGISTER removes the old contact and adds the new one
		// (written into the helper's Contact <...> as two entries).
		register(t, b2, px, "bob", "bobpw", c1+">;expires=0, <"+c2)
		if st := c.Status(); st.Version >= reg.Version() {
			t.Fatalf("the stream is not behind (cache %d, registrar %d): the test proves nothing", st.Version, reg.Version())
		}
		callReaches(t, alice, px, b2, b1)
	})
	t.Run("moved back", func(t *testing.T) {
		register(t, b1, px, "bob", "bobpw", c2+">;expires=0, <"+c1)
		callReaches(t, alice, px, b1, b2)
	})
}

// A binding that expired is not used even though the stream has not
// brought its removal (the registrar only sweeps now and then): the cache
// checks expiry on every lookup, and the registrar then answers 480.
func TestLocationCacheExpiredBinding(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	reg, _, _, c, px := cacheSetup(t, now)
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	register(t, bob, px, "bob", "bobpw", "sip:bob@"+bob.addr.String()) // Expires: 300
	waitCaught(t, c, reg)
	callReaches(t, alice, px, bob)

	mu.Lock()
	clock = clock.Add(301 * time.Second)
	mu.Unlock()
	hits := c.Status().Hits
	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "carol@pstn.test", "bob@"+testDomain))
	mustCode(t, alice.final(sip.INVITE), 480)
	bob.silent(200*time.Millisecond, isRequest(sip.INVITE), "an INVITE for an expired binding")
	if st := c.Status(); st.Hits != hits {
		t.Errorf("an expired binding was answered from the cache: hits %d -> %d", hits, st.Hits)
	}
}

// The stream drops (registrar's HTTP side unreachable for watching): the
// cache stops answering and every lookup goes to the registrar, so calls
// keep working and see bindings made meanwhile; when the stream is back
// the cache resyncs from a snapshot and answers again.
func TestLocationCacheStreamDropsAndReturns(t *testing.T) {
	reg, regAddr, l, c, px := cacheSetup(t, time.Now)
	alice, b1, b2 := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3"), newPhone(t, "127.0.0.4")
	register(t, b1, px, "bob", "bobpw", "sip:bob@"+b1.addr.String())
	waitCaught(t, c, reg)

	l.down.Store(true)
	l.srv.CloseClientConnections()
	deadline := time.Now().Add(waitFor)
	for c.Status().Synced {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not notice its stream ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Registered straight at the registrar, not through the proxy: the
	// proxy hears of it only by asking.
	register(t, b2, regAddr, "bob", "bobpw", "sip:bob@"+b1.addr.String()+">;expires=0, <sip:bob@"+b2.addr.String())
	before := c.Status()
	callReaches(t, alice, px, b2, b1)
	if st := c.Status(); st.Hits != before.Hits || st.Direct <= before.Direct {
		t.Fatalf("with the stream down the lookup did not go to the registrar: %+v then %+v", before, st)
	}

	l.down.Store(false)
	waitCaught(t, c, reg)
	before = c.Status()
	callReaches(t, alice, px, b2, b1)
	if st := c.Status(); st.Hits <= before.Hits || st.Direct != before.Direct {
		t.Fatalf("after the stream came back the call was not answered from the cache: %+v then %+v", before, st)
	}
}

// startRegistrarAt is startRegistrar with the registrar's clock.
func startRegistrarAt(t testing.TB, now func() time.Time) (*registrar.Registrar, netip.AddrPort) {
	t.Helper()
	users, err := sipauth.NewUsers(sipauth.User{Name: "alice", Password: "alicepw"}, sipauth.User{Name: "bob", Password: "bobpw"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registrar.New(registrar.Config{
		Domain: testDomain, Users: users, Logger: quietLogger(), Now: now,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	reg.Attach(ep)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ep.Close() })
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return reg, ep.Addr()
}
