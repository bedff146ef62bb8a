package sipauth

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

const realm = "siplab.test"

// clock is a settable time source shared by the Authenticator under test.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newAuth(t testing.TB, mod func(*Config)) (*Authenticator, *clock) {
	t.Helper()
	users, err := ParseUsers(strings.NewReader("alice secret\nbob hunter2 blocked\n"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	cfg := Config{Realm: realm, Users: users, Now: clk.now}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

// request parses a REGISTER (or another method) carrying the given extra
// header lines, the way the transport layer would hand it to a handler.
func request(t testing.TB, method, ruri string, extra ...string) *sip.Request {
	t.Helper()
	msg := method + " " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:alice@siplab.test>;tag=1\r\n" +
		"To: <sip:alice@siplab.test>\r\n" +
		"Call-ID: c1@test\r\n" +
		"CSeq: 1 " + method + "\r\n" +
		"Max-Forwards: 70\r\n"
	for _, h := range extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, msg)
	}
	return m.(*sip.Request)
}

// answer computes credentials with an independent implementation
// (icholy/digest), so the test does not check our math against itself.
func answer(t testing.TB, chalValue, method, uri, user, pass string, count int) string {
	t.Helper()
	chal, err := digest.ParseChallenge(chalValue)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: user, Password: pass, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestAuthenticateVerdicts(t *testing.T) {
	const ruri = "sip:siplab.test"
	type tc struct {
		name    string
		kind    Kind
		creds   func(a *Authenticator, clk *clock) []string // extra header lines
		verdict Verdict
		stale   bool
		user    string
	}
	good := func(user, pass string) func(*Authenticator, *clock) []string {
		return func(a *Authenticator, _ *clock) []string {
			return []string{"Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", ruri, user, pass, 1)}
		}
	}
	tests := []tc{
		{name: "no credentials", creds: func(*Authenticator, *clock) []string { return nil }, verdict: Challenge},
		{name: "good", creds: good("alice", "secret"), verdict: Accept, user: "alice"},
		{name: "wrong password", creds: good("alice", "nope"), verdict: Challenge, user: "alice"},
		{name: "unknown user", creds: good("mallory", "secret"), verdict: Challenge, user: "mallory"},
		{name: "blocked right password", creds: good("bob", "hunter2"), verdict: Forbid, user: "bob"},
		{name: "blocked wrong password", creds: good("bob", "x"), verdict: Challenge, user: "bob"},
		{name: "basic scheme only", creds: func(*Authenticator, *clock) []string {
			return []string{"Authorization: Basic YWxpY2U6c2VjcmV0"}
		}, verdict: Challenge},
		{name: "other realm", creds: func(a *Authenticator, _ *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			return []string{"Authorization: " + strings.Replace(v, `realm="siplab.test"`, `realm="elsewhere"`, 1)}
		}, verdict: Challenge},
		{name: "second header for our realm", creds: func(a *Authenticator, _ *clock) []string {
			return []string{
				`Authorization: Digest username="x", realm="elsewhere", nonce="n", uri="sip:siplab.test", response="00000000000000000000000000000000"`,
				"Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1),
			}
		}, verdict: Accept, user: "alice"},
		{name: "malformed", creds: func(*Authenticator, *clock) []string {
			return []string{`Authorization: Digest username="alice", realm`}
		}, verdict: Reject},
		{name: "unterminated quote", creds: func(*Authenticator, *clock) []string {
			return []string{`Authorization: Digest username="alice, realm="siplab.test"`}
		}, verdict: Reject},
		{name: "duplicate parameter", creds: func(a *Authenticator, _ *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			return []string{"Authorization: " + v + `, response="00000000000000000000000000000000"`}
		}, verdict: Reject},
		{name: "missing response", creds: func(a *Authenticator, _ *clock) []string {
			return []string{`Authorization: Digest username="alice", realm="siplab.test", nonce="abc", uri="sip:siplab.test"`}
		}, verdict: Reject, user: "alice"},
		{name: "sha-256 answer", creds: func(a *Authenticator, _ *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			return []string{"Authorization: " + strings.Replace(v, "algorithm=MD5", "algorithm=SHA-256", 1)}
		}, verdict: Reject, user: "alice"},
		{name: "auth-int qop", creds: func(a *Authenticator, _ *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			return []string{"Authorization: " + strings.Replace(v, "qop=auth", "qop=auth-int", 1)}
		}, verdict: Reject, user: "alice"},
		{name: "bad nc", creds: func(a *Authenticator, _ *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			return []string{"Authorization: " + strings.Replace(v, "nc=00000001", "nc=1", 1)}
		}, verdict: Reject, user: "alice"},
		{name: "uri not the request-uri", creds: func(a *Authenticator, _ *clock) []string {
			return []string{"Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", "sip:other.test", "alice", "secret", 1)}
		}, verdict: Reject, user: "alice"},
		{name: "forged nonce", creds: func(a *Authenticator, _ *clock) []string {
			chal := a.ChallengeValue(false)
			i := strings.Index(chal, `nonce="`) + len(`nonce="`)
			b := []byte(chal)
			b[i+3] ^= 1 // still base64, no longer signed
			return []string{"Authorization: " + answer(t, string(b), "REGISTER", ruri, "alice", "secret", 1)}
		}, verdict: Challenge, user: "alice"},
		{name: "opaque mismatch", creds: func(a *Authenticator, _ *clock) []string {
			chal := strings.Replace(a.ChallengeValue(false), `opaque="`, `opaque="x`, 1)
			return []string{"Authorization: " + answer(t, chal, "REGISTER", ruri, "alice", "secret", 1)}
		}, verdict: Challenge, user: "alice"},
		{name: "expired nonce right password", creds: func(a *Authenticator, clk *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			clk.advance(5*time.Minute + time.Second)
			return []string{"Authorization: " + v}
		}, verdict: Challenge, stale: true, user: "alice"},
		{name: "expired nonce wrong password", creds: func(a *Authenticator, clk *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "nope", 1)
			clk.advance(5*time.Minute + time.Second)
			return []string{"Authorization: " + v}
		}, verdict: Challenge, stale: false, user: "alice"},
		{name: "nonce just inside ttl", creds: func(a *Authenticator, clk *clock) []string {
			v := answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
			clk.advance(5 * time.Minute)
			return []string{"Authorization: " + v}
		}, verdict: Accept, user: "alice"},
		{name: "rfc2069 no qop", creds: func(a *Authenticator, _ *clock) []string {
			chal := strings.Replace(a.ChallengeValue(false), `, qop="auth"`, "", 1)
			return []string{"Authorization: " + answer(t, chal, "REGISTER", ruri, "alice", "secret", 0)}
		}, verdict: Accept, user: "alice"},
		{name: "proxy kind reads proxy-authorization", kind: Proxy, creds: func(a *Authenticator, _ *clock) []string {
			return []string{"Proxy-Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)}
		}, verdict: Accept, user: "alice"},
		{name: "proxy kind ignores authorization", kind: Proxy, creds: good("alice", "secret"), verdict: Challenge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk := newAuth(t, nil)
			req := request(t, "REGISTER", ruri, tt.creds(a, clk)...)
			d := a.Authenticate(req, tt.kind)
			if d.Verdict != tt.verdict || d.Stale != tt.stale || d.User != tt.user {
				t.Fatalf("got %+v, want verdict=%v stale=%v user=%q", d, tt.verdict, tt.stale, tt.user)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
			for _, secret := range []string{"secret", "hunter2"} {
				if strings.Contains(d.Reason, secret) {
					t.Errorf("reason %q leaks a password", d.Reason)
				}
			}
		})
	}
}

func TestReplay(t *testing.T) {
	a, _ := newAuth(t, nil)
	const ruri = "sip:siplab.test"
	chal := a.ChallengeValue(false)
	at := func(nc int) Decision {
		return a.Authenticate(request(t, "REGISTER", ruri, "Authorization: "+answer(t, chal, "REGISTER", ruri, "alice", "secret", nc)), WWW)
	}
	steps := []struct {
		nc      int
		verdict Verdict
	}{
		{1, Accept},
		{1, Challenge}, // the same Authorization again
		{3, Accept},    // counts may skip
		{2, Challenge}, // lower than seen
		{3, Challenge},
		{4, Accept},
	}
	for i, s := range steps {
		d := at(s.nc)
		if d.Verdict != s.verdict {
			t.Fatalf("step %d nc=%d: got %+v, want %v", i, s.nc, d, s.verdict)
		}
		if d.Verdict == Challenge && !d.Stale {
			t.Fatalf("step %d: replay of good credentials must be stale so phones retry", i)
		}
	}

	// Without qop a nonce is good once.
	noQop := strings.Replace(a.ChallengeValue(false), `, qop="auth"`, "", 1)
	h := "Authorization: " + answer(t, noQop, "REGISTER", ruri, "alice", "secret", 0)
	if d := a.Authenticate(request(t, "REGISTER", ruri, h), WWW); d.Verdict != Accept {
		t.Fatalf("first rfc2069 use: %+v", d)
	}
	if d := a.Authenticate(request(t, "REGISTER", ruri, h), WWW); d.Verdict != Challenge {
		t.Fatalf("second rfc2069 use: %+v", d)
	}
}

func TestReplayTableIsBounded(t *testing.T) {
	a, clk := newAuth(t, func(c *Config) { c.MaxTrackedNonces = ncShards * 2 * 16 })
	const ruri = "sip:siplab.test"
	first := a.ChallengeValue(false)
	for i := 0; i < 20000; i++ {
		h := "Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
		if d := a.Authenticate(request(t, "REGISTER", ruri, h), WWW); d.Verdict != Accept {
			t.Fatalf("registration %d: %+v", i, d)
		}
	}
	if n := a.trackedNonces(); n > ncShards*2*16 {
		t.Fatalf("tracking %d nonces, cap is %d", n, ncShards*2*16)
	}
	// The first nonce was never used but its shard has rotated past it:
	// it cannot be proven unused, so it is refused as stale, never accepted.
	h := "Authorization: " + answer(t, first, "REGISTER", ruri, "alice", "secret", 1)
	if d := a.Authenticate(request(t, "REGISTER", ruri, h), WWW); d.Verdict != Challenge || !d.Stale {
		t.Fatalf("forgotten nonce: %+v, want stale challenge", d)
	}
	// Time-based rotation drops entries once their nonces expired.
	clk.advance(11 * time.Minute)
	for i := 0; i < 2*ncShards*4; i++ {
		h := "Authorization: " + answer(t, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1)
		a.Authenticate(request(t, "REGISTER", ruri, h), WWW)
	}
	if n := a.trackedNonces(); n > 2*ncShards*4+ncShards*16 {
		t.Fatalf("after expiry still tracking %d nonces", n)
	}
}

func TestRespond(t *testing.T) {
	a, _ := newAuth(t, nil)
	req := request(t, "REGISTER", "sip:siplab.test")
	tests := []struct {
		kind   Kind
		d      Decision
		code   int
		header string
		stale  bool
	}{
		{WWW, Decision{Verdict: Challenge}, 401, "WWW-Authenticate", false},
		{WWW, Decision{Verdict: Challenge, Stale: true}, 401, "WWW-Authenticate", true},
		{Proxy, Decision{Verdict: Challenge}, 407, "Proxy-Authenticate", false},
		{Proxy, Decision{Verdict: Challenge, Stale: true}, 407, "Proxy-Authenticate", true},
		{WWW, Decision{Verdict: Forbid, Reason: "user blocked"}, 403, "", false},
		{Proxy, Decision{Verdict: Reject, Reason: "nc must be 8 hex digits"}, 400, "", false},
		{WWW, Decision{Verdict: Challenge, Reason: "unknown user"}, 401, "WWW-Authenticate", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v-%v-%v", tt.kind, tt.d.Verdict, tt.stale), func(t *testing.T) {
			res := a.Respond(req, tt.kind, tt.d)
			if res.StatusCode != tt.code {
				t.Fatalf("code %d, want %d", res.StatusCode, tt.code)
			}
			if res.CallID().Value() != "c1@test" || res.CSeq().SeqNo != 1 {
				t.Fatal("response does not match the request")
			}
			h := res.GetHeader(tt.header)
			if w := res.GetHeader("Warning"); (w != nil) != (tt.d.Verdict != Challenge && tt.d.Reason != "") {
				t.Fatalf("Warning %v for %+v", w, tt.d)
			}
			if tt.header == "" {
				if res.GetHeader("WWW-Authenticate") != nil || res.GetHeader("Proxy-Authenticate") != nil {
					t.Fatal("challenge header on a non-challenge response")
				}
				return
			}
			if h == nil {
				t.Fatalf("no %s header", tt.header)
			}
			chal, err := digest.ParseChallenge(h.Value())
			if err != nil {
				t.Fatal(err)
			}
			if chal.Realm != realm || chal.Nonce == "" || chal.Opaque == "" || chal.Algorithm != "MD5" ||
				!chal.SupportsQOP("auth") || chal.Stale != tt.stale {
				t.Fatalf("challenge %q", h.Value())
			}
		})
	}
	if a.Respond(req, WWW, Decision{Verdict: Accept}) != nil {
		t.Fatal("Respond(Accept) must be nil")
	}
	// Two challenges never share a nonce.
	n1, _ := digest.ParseChallenge(a.ChallengeValue(false))
	n2, _ := digest.ParseChallenge(a.ChallengeValue(false))
	if n1.Nonce == n2.Nonce {
		t.Fatal("nonce reused")
	}
}

func TestConfigValidate(t *testing.T) {
	users, _ := NewUsers(User{Name: "a", Password: "b"})
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Realm: "r", Users: users}, true},
		{"no realm", Config{Users: users}, false},
		{"quote in realm", Config{Realm: `r"`, Users: users}, false},
		{"no users", Config{Realm: "r"}, false},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		in   string
		want credentials
		ok   bool
	}{
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="r1", qop=auth, nc=00000001, cnonce="c"`,
			credentials{username: "a", realm: "r", nonce: "n", uri: "sip:x", response: "r1", qop: "auth", nc: "00000001", cnonce: "c"}, true},
		{"digest\tusername = \"a\\\"b\" ,realm=\"r\",extra=tok", credentials{username: `a"b`, realm: "r"}, true},
		{`Digest qop="auth"`, credentials{qop: "auth"}, true},
		{`Digest`, credentials{}, false},
		{`Digest `, credentials{}, false},
		{`Digests username="a"`, credentials{}, false},
		{`Digest username="a" realm="r"`, credentials{}, false},
		{`Digest username=`, credentials{}, false},
		{`Digest =x`, credentials{}, false},
		{`Digest username="a", username="b"`, credentials{}, false},
		{`Digest username="a\`, credentials{}, false},
	}
	for _, tt := range tests {
		got, err := parseCredentials(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseCredentials(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="a", realm="r", nonce="n", uri="sip:x", response="r1", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="a\"\\", realm=`)
	f.Fuzz(func(t *testing.T, s string) {
		parseCredentials(s)
	})
}

// TestConcurrent hammers one Authenticator from many goroutines: fresh
// nonces, reused nonces with rising counts, and replays. Run with -race.
func TestConcurrent(t *testing.T) {
	a, _ := newAuth(t, nil)
	const ruri = "sip:siplab.test"
	var wg sync.WaitGroup
	var accepted, replays atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				chal := a.ChallengeValue(false)
				for nc := 1; nc <= 3; nc++ {
					h := "Authorization: " + answer(t, chal, "REGISTER", ruri, "alice", "secret", nc)
					for try := 0; try < 2; try++ {
						switch d := a.Authenticate(request(t, "REGISTER", ruri, h), WWW); {
						case try == 0 && d.Verdict == Accept:
							accepted.Add(1)
						case try == 1 && d.Verdict == Challenge && d.Stale:
							replays.Add(1)
						default:
							t.Errorf("try %d nc %d: %+v", try, nc, d)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 8*100*3 || replays.Load() != 8*100*3 {
		t.Fatalf("accepted %d, replays refused %d; want %d each", accepted.Load(), replays.Load(), 8*100*3)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	a, _ := newAuth(b, nil)
	const ruri = "sip:siplab.test"
	// Pre-build distinct requests: each must carry a fresh nonce, as a
	// real 401 → REGISTER exchange does.
	reqs := make([]*sip.Request, 4096)
	for i := range reqs {
		reqs[i] = request(b, "REGISTER", ruri, "Authorization: "+answer(b, a.ChallengeValue(false), "REGISTER", ruri, "alice", "secret", 1))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			// Counts beyond the first are replays; the work is the same
			// up to the replay check, which is what is measured here.
			a.Authenticate(reqs[i%len(reqs)], WWW)
			i++
		}
	})
}

func BenchmarkChallenge(b *testing.B) {
	a, _ := newAuth(b, nil)
	req := request(b, "REGISTER", "sip:siplab.test")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Respond(req, WWW, Decision{Verdict: Challenge})
		}
	})
}
