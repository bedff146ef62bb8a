package registrar

import (
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
)

// guess sends one REGISTER with credentials for the wrong password (after
// the challenge it answers) and returns the final response.
func (p *phone) guess(password string) *sip.Response {
	p.t.Helper()
	res := p.send(p.request())
	if res.StatusCode != sip.StatusUnauthorized {
		return res
	}
	return p.send(p.request(answer(p.t, res, p.user, password, 1)))
}

// loggedRegistrar serves a registrar on clk whose log lines collect in
// the buffer returned.
func loggedRegistrar(t *testing.T, clk *siptest.Clock) (*Registrar, netip.AddrPort, *siptest.LogBuffer) {
	t.Helper()
	logs := &siptest.LogBuffer{}
	cfg := baseConfig(t, clk)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	r := newRegistrar(t, cfg)
	return r, serveRegistrar(t, r), logs
}

func TestGuardBlocksPasswordGuessing(t *testing.T) {
	clk := newClock()
	r, addr, logs := loggedRegistrar(t, clk)

	attacker := newPhoneAt(t, "127.0.0.2", addr, "bob", "hunter2")
	for i := 1; i < 10; i++ {
		if res := attacker.guess("wrong"); res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i, res.StatusCode, res.Reason)
		}
	}
	res := attacker.guess("wrong")
	if res.StatusCode != sip.StatusForbidden || res.Reason != "Forbidden (source blocked)" {
		t.Fatalf("10th wrong password: %d %s, want 403 Forbidden (source blocked)", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "300" {
		t.Fatalf("Retry-After: %v, want 300", h)
	}
	// The right password from the blocked source: refused before any
	// challenge.
	if res := attacker.send(attacker.request()); res.StatusCode != sip.StatusForbidden {
		t.Fatalf("blocked source, first REGISTER: %d, want 403", res.StatusCode)
	}
	// Another source registers.
	alice := newPhone(t, addr, "alice", "secret")
	if res, _ := alice.register(); res.StatusCode != sip.StatusOK {
		t.Fatalf("another source: %d %s", res.StatusCode, res.Reason)
	}
	st := r.Status()
	if len(st.Blocked) != 1 || st.Blocked[0].Source != netip.MustParseAddr("127.0.0.2") || st.FailedAuths != 10 {
		t.Fatalf("status: blocked %+v, failed auths %d", st.Blocked, st.FailedAuths)
	}
	if got := logs.Lines(`msg="auth failed"`); len(got) != 10 {
		t.Fatalf("%d auth failed lines, want 10:\n%s", len(got), strings.Join(got, "\n"))
	}
	if got := logs.Lines(`msg="source blocked"`); len(got) != 1 ||
		!strings.Contains(got[0], `level=WARN`) || !strings.Contains(got[0], `src=127.0.0.2 user=bob reason="failed_auth: 10 in 1m0s"`) {
		t.Fatalf("block line: %q", got)
	}

	// The block ends after 5 minutes of the injected clock: the right
	// password works again.
	clk.Advance(5*time.Minute + time.Second)
	if res, _ := attacker.register(); res.StatusCode != sip.StatusOK {
		t.Fatalf("after the block: %d %s", res.StatusCode, res.Reason)
	}
}

// The first challenge of every normal login, a stale nonce and the right
// password never count: a phone that registers all day is never blocked.
func TestGuardIgnoresNormalLogins(t *testing.T) {
	r, addr, logs := loggedRegistrar(t, newClock())
	alice := newPhone(t, addr, "alice", "secret")
	for i := range 30 {
		if res, _ := alice.register(); res.StatusCode != sip.StatusOK {
			t.Fatalf("registration %d: %d", i, res.StatusCode)
		}
	}
	if n := r.Status().FailedAuths; n != 0 || len(logs.Lines("auth failed")) != 0 {
		t.Fatalf("normal logins counted as failures: %d", n)
	}
}

func TestGuardLiveSettings(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	addr := serveRegistrar(t, r)
	mustSet(t, r, "auth_fail_limit", "3")
	mustSet(t, r, "auth_block_for", "90")
	for _, bad := range [][2]string{{"auth_fail_limit", "-1"}, {"auth_fail_limit", "many"}, {"auth_block_for", "0"}, {"auth_fail_window", "x"}, {"max_transactions", "-3"}} {
		if _, err := r.Set(bad[0], bad[1]); err == nil {
			t.Fatalf("set %s %s accepted", bad[0], bad[1])
		}
	}
	if _, err := r.Set("rport", "on"); err == nil {
		t.Fatal("unknown setting accepted")
	}
	s := r.Settings()
	if s.FailLimit != 3 || s.BlockFor != "1m30s" || s.FailWindow != "1m0s" {
		t.Fatalf("settings: %+v", s)
	}
	p := newPhoneAt(t, "127.0.0.3", addr, "bob", "hunter2")
	p.guess("wrong")
	p.guess("wrong")
	if res := p.guess("wrong"); res.StatusCode != sip.StatusForbidden {
		t.Fatalf("3rd guess with auth_fail_limit 3: %d", res.StatusCode)
	}
	if !r.Unblock(netip.MustParseAddr("127.0.0.3")) {
		t.Fatal("unblock: not blocked")
	}
	if res, _ := p.register(); res.StatusCode != sip.StatusOK {
		t.Fatalf("after unblock: %d", res.StatusCode)
	}
}

// Through a trusted proxy the guard judges the Path's received=, and never
// blocks the proxy itself.
func TestGuardBehindTrustedProxy(t *testing.T) {
	clk := newClock()
	cfg := baseConfig(t, clk)
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}
	r := newRegistrar(t, cfg)
	addr := serveRegistrar(t, r)
	proxy := newPhoneAt(t, "127.0.0.4", addr, "bob", "hunter2")
	path := func(src string) string { return "Path: <sip:127.0.0.4;lr;received=" + src + ">" }
	guess := func(src string) *sip.Response {
		res := proxy.send(proxy.request(path(src)))
		if res.StatusCode != sip.StatusUnauthorized {
			return res
		}
		return proxy.send(proxy.request(path(src), answer(t, res, "bob", "wrong", 1)))
	}
	for range 9 {
		guess("203.0.113.66:5060")
	}
	if res := guess("203.0.113.66:5060"); res.StatusCode != sip.StatusForbidden {
		t.Fatalf("10th guess relayed for 203.0.113.66: %d, want 403", res.StatusCode)
	}
	// Another site behind the same proxy registers.
	proxy.user, proxy.pass = "alice", "secret"
	if res, _ := proxy.register(path("203.0.113.2:5060")); res.StatusCode != sip.StatusOK {
		t.Fatalf("another source via the proxy: %d", res.StatusCode)
	}
	// Guesses without a Path come from the proxy itself: never blocked.
	proxy.user = "bob"
	for range 20 {
		res := proxy.send(proxy.request())
		res = proxy.send(proxy.request(answer(t, res, "bob", "wrong", 1)))
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("trusted proxy's own source: %d", res.StatusCode)
		}
	}
	if b := r.Blocked(); len(b) != 1 || b[0].Source.String() != "203.0.113.66" {
		t.Fatalf("blocked: %+v", b)
	}
}

// Over UDP a REGISTER takes sipnet's direct path: no sipgo transaction.
// A challenge is stateless — a retransmitted first REGISTER is answered
// afresh, with a new nonce, and nothing is kept — while a 200 is kept, so a
// retransmitted REGISTER gets the very same 200 (same To tag, same bytes)
// rather than being run through the store again, which would refuse its
// CSeq as out of order.
func TestRetransmittedRegister(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	addr := serveRegistrar(t, r)
	p := newRawPhone(t, addr, "alice", "secret")
	first := p.message(1, "")
	c1 := p.exchange(first)
	c2 := p.exchange(first)
	if c1.StatusCode != sip.StatusUnauthorized || c2.StatusCode != sip.StatusUnauthorized {
		t.Fatalf("first REGISTER and its retransmission: %d, %d", c1.StatusCode, c2.StatusCode)
	}
	if n1, n2 := c1.GetHeader("WWW-Authenticate").Value(), c2.GetHeader("WWW-Authenticate").Value(); n1 == n2 {
		t.Fatalf("a retransmitted challenge was replayed, not computed again: %s", n1)
	}
	if st := r.Status(); st.Direct.Kept != 0 || st.Transactions != 0 {
		t.Fatalf("after the challenges: kept %d, transactions %d", st.Direct.Kept, st.Transactions)
	}
	second := p.message(2, answer(t, c1, "alice", "secret", 1))
	ok1 := p.exchangeRaw(second)
	ok2 := p.exchangeRaw(second)
	if !strings.HasPrefix(string(ok1), "SIP/2.0 200 ") {
		t.Fatalf("with credentials: %s", ok1)
	}
	if string(ok1) != string(ok2) {
		t.Fatalf("retransmission answered differently:\n%s\nthen\n%s", ok1, ok2)
	}
	st := r.Status()
	if st.Direct.Kept != 1 || st.Direct.Replayed != 1 || st.Transactions != 0 {
		t.Fatalf("after the 200 and its retransmission: %+v, transactions %d", st.Direct, st.Transactions)
	}
	// A new request of the registration (next CSeq) is served, not replayed.
	third := p.message(3, answer(t, c1, "alice", "secret", 2))
	if res := p.exchange(third); res.StatusCode != sip.StatusOK {
		t.Fatalf("next CSeq: %d", res.StatusCode)
	}
	if st := r.Status(); st.Direct.Kept != 2 || st.Direct.Replayed != 1 {
		t.Fatalf("after the next CSeq: %+v", st.Direct)
	}
}

func waitHeld(t *testing.T, r *Registrar, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for r.txl.Held() != want {
		if time.Now().After(deadline) {
			t.Fatalf("transactions held: %d, want %d", r.txl.Held(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Beyond max_transactions a request gets 503 with Retry-After and holds
// nothing.
func TestTransactionCap(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	addr := serveRegistrar(t, r)
	mustSet(t, r, "max_transactions", "1")
	// An OPTIONS' 200 holds its sipgo transaction for Timer J; the cap
	// counts it, and the REGISTERs on the direct path against it.
	alice := newPhone(t, addr, "alice", "secret")
	opt := alice.request()
	opt.Method = sip.OPTIONS
	opt.CSeq().MethodName = sip.OPTIONS
	if res := alice.send(opt); res.StatusCode != sip.StatusOK {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	waitHeld(t, r, 1)
	bob := newPhone(t, addr, "bob", "hunter2")
	res := bob.send(bob.request())
	if res.StatusCode != sip.StatusServiceUnavailable || res.GetHeader("Retry-After") == nil {
		t.Fatalf("over the cap: %d %s", res.StatusCode, res.Reason)
	}
	if st := r.Status(); st.Overloaded != 1 || st.Transactions != 1 {
		t.Fatalf("status: overloaded %d, transactions %d", st.Overloaded, st.Transactions)
	}
	mustSet(t, r, "max_transactions", "0")
	if res, _ := bob.register(); res.StatusCode != sip.StatusOK {
		t.Fatalf("cap lifted: %d", res.StatusCode)
	}
}

// The shipped fail2ban filter matches the registrar's real log lines and
// extracts the source.
func TestFail2banFilterMatchesLog(t *testing.T) {
	conf, err := os.ReadFile("../docs/fail2ban/siplab.conf")
	if err != nil {
		t.Fatal(err)
	}
	var res []*regexp.Regexp
	in := false
	for _, l := range strings.Split(string(conf), "\n") {
		switch {
		case strings.HasPrefix(l, "failregex"):
			in = true
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(l, "failregex")), "="))
		case in && strings.HasPrefix(l, " "):
			l = strings.TrimSpace(l)
		default:
			in = false
			continue
		}
		// fail2ban's <HOST> is an address; Go and Python agree on the rest.
		re, err := regexp.Compile(strings.ReplaceAll(l, "<HOST>", `(?P<host>[0-9A-Fa-f.:]+)`))
		if err != nil {
			t.Fatalf("failregex %q: %v", l, err)
		}
		res = append(res, re)
	}
	if len(res) != 2 {
		t.Fatalf("%d failregex lines, want 2", len(res))
	}

	_, addr, logs := loggedRegistrar(t, newClock())
	// A user name chosen to fool a sloppy filter.
	p := newPhoneAt(t, "127.0.0.5", addr, `x src=9.9.9.9 user=y`, "pw")
	for range 10 {
		p.guess("wrong")
	}
	lines := append(logs.Lines(`msg="auth failed"`), logs.Lines(`msg="source blocked"`)...)
	if len(lines) != 11 {
		t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		matched := false
		for _, re := range res {
			if m := re.FindStringSubmatch(l); m != nil {
				matched = true
				if host := m[re.SubexpIndex("host")]; host != "127.0.0.5" {
					t.Fatalf("host %q from %q", host, l)
				}
			}
		}
		if !matched {
			t.Fatalf("no failregex matches %q", l)
		}
	}
	// Other log lines do not match.
	for _, l := range logs.Lines("registrar ready") {
		for _, re := range res {
			if re.MatchString(l) {
				t.Fatalf("%q matches %v", l, re)
			}
		}
	}
}

// A retransmission of a challenged REGISTER (same branch) finds no
// transaction and is challenged afresh, with a new nonce, as by a
// stateless server; a retransmission of a REGISTER answered 200 is
// absorbed by the kept transaction, which resends the same 200.
func TestRetransmissionAfterStatelessChallenge(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	p := newRawPhone(t, serveRegistrar(t, r), "alice", "secret")
	first := p.message(1, "")
	a := p.exchange(first)
	waitHeld(t, r, 0)
	b := p.exchange(first) // the retransmission
	na, nb := a.GetHeader("WWW-Authenticate").Value(), b.GetHeader("WWW-Authenticate").Value()
	if a.StatusCode != 401 || b.StatusCode != 401 || na == nb {
		t.Fatalf("retransmission: %d then %d, challenges %q / %q: want two 401s with different nonces", a.StatusCode, b.StatusCode, na, nb)
	}
	second := p.message(2, answer(t, b, "alice", "secret", 1))
	if ok := p.exchange(second); ok.StatusCode != 200 {
		t.Fatalf("with credentials: %d", ok.StatusCode)
	}
	// The retransmission: the kept transaction answers.
	if again := p.exchange(second); again.StatusCode != 200 {
		t.Fatalf("retransmitted REGISTER after 200: %d %s, want the same 200", again.StatusCode, again.Reason)
	}
}
