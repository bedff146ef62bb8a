package console

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/labctl"
)

// newTest builds a console whose lab is a Docker lab at an empty folder:
// the tests below stop at the guard or at a malformed body, so no request
// ever reaches Docker (a test must never touch the shared lab).
func newTest(t *testing.T, listen, token string) *Server {
	t.Helper()
	s, err := New(Config{Listen: listen, Token: token, Lab: &DockerLab{R: &labctl.Runner{Dir: t.TempDir()}, Root: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   bool
		bad    bool
	}{
		{"127.0.0.1:8080", true, false},
		{"127.0.0.5:0", true, false},
		{"[::1]:8080", true, false},
		{"localhost:8080", true, false},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.168.1.10:8080", false, false},
		{"classroom.example:8080", false, true},
		{"8080", false, true},
	} {
		got, err := IsLoopback(tc.listen)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, %v; want %v, error %v", tc.listen, got, err, tc.want, tc.bad)
		}
	}
}

func TestNonLoopbackMakesAToken(t *testing.T) {
	if s := newTest(t, "127.0.0.1:8080", ""); s.Token() != "" {
		t.Errorf("loopback console has a token %q", s.Token())
	}
	s := newTest(t, "0.0.0.0:8080", "")
	if len(s.Token()) < 32 {
		t.Errorf("token %q too short", s.Token())
	}
	if _, err := New(Config{Listen: "0.0.0.0:8080", Token: "short", Lab: &DockerLab{}}); err == nil {
		t.Error("a 5-character token was accepted")
	}
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestLoopbackGuard(t *testing.T) {
	h := newTest(t, "127.0.0.1:8080", "").Handler()
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		want   int
	}{
		{"page", "GET", "/", map[string]string{"Host": "127.0.0.1:8080"}, "", 200},
		{"page by localhost", "GET", "/", map[string]string{"Host": "localhost:8080"}, "", 200},
		{"asset", "GET", "/static/console.js", map[string]string{"Host": "127.0.0.1:8080"}, "", 200},
		{"DNS rebinding: a foreign Host", "GET", "/", map[string]string{"Host": "evil.example:8080"}, "", http.StatusMisdirectedRequest},
		{"POST without Origin", "POST", "/api/set", map[string]string{"Host": "127.0.0.1:8080", "Content-Type": "application/json"}, `{}`, http.StatusForbidden},
		{"POST from another site", "POST", "/api/set", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://evil.example", "Content-Type": "application/json"}, `{}`, http.StatusForbidden},
		{"POST from another port", "POST", "/api/phone", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:9999", "Content-Type": "application/json"}, `{}`, http.StatusForbidden},
		{"POST from the page, not JSON", "POST", "/api/set", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Content-Type": "text/plain"}, `x`, http.StatusUnsupportedMediaType},
		{"POST from the page, unknown field", "POST", "/api/set", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"}, `{"cmd":"sh"}`, http.StatusBadRequest},
		{"POST from the page, no node", "POST", "/api/set", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"}, `{"key":"rport"}`, http.StatusBadRequest},
		{"phone verb not a verb", "POST", "/api/phone", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"}, `{"verb":"exec","phone":"alice","args":["sh"]}`, http.StatusBadRequest},
		{"GET on an action", "GET", "/api/set", map[string]string{"Host": "127.0.0.1:8080"}, "", http.StatusMethodNotAllowed},
		{"exercise op unknown", "POST", "/api/exercise", map[string]string{"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"}, `{"op":"rm"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, tc.method, tc.path, tc.hdr, tc.body)
			if res.StatusCode != tc.want {
				b, _ := io.ReadAll(res.Body)
				t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, res.StatusCode, tc.want, b)
			}
		})
	}
}

func TestTokenGuard(t *testing.T) {
	const tok = "0123456789abcdef0123"
	h := newTest(t, "0.0.0.0:8080", tok).Handler()
	host := map[string]string{"Host": "10.0.0.5:8080"}
	if res := do(t, h, "GET", "/", host, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", res.StatusCode)
	}
	if res := do(t, h, "GET", "/events", host, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("events without token: %d, want 401", res.StatusCode)
	}
	if res := do(t, h, "GET", "/?token=wrong", host, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", res.StatusCode)
	}
	// ?token= sets the cookie and leaves the address bar clean.
	res := do(t, h, "GET", "/?token="+tok+"&projector=1", host, "")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?projector=1" {
		t.Fatalf("token in the query: %d to %q, want 303 to /?projector=1", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == CookieName {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != tok || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v, want the token, HttpOnly, SameSite=Strict", cookie)
	}
	withCookie := map[string]string{"Host": "10.0.0.5:8080", "Cookie": CookieName + "=" + tok}
	if res := do(t, h, "GET", "/", withCookie, ""); res.StatusCode != 200 {
		t.Errorf("with the cookie: %d, want 200", res.StatusCode)
	}
	if res := do(t, h, "GET", "/", map[string]string{"Host": "10.0.0.5:8080", "Cookie": CookieName + "=nope"}, ""); res.StatusCode != 401 {
		t.Errorf("with a wrong cookie: %d, want 401", res.StatusCode)
	}
	if res := do(t, h, "GET", "/api/meta", map[string]string{"Host": "10.0.0.5:8080", HeaderName: tok}, ""); res.StatusCode != 200 {
		t.Errorf("with the header: %d, want 200", res.StatusCode)
	}
	// The token does not excuse a foreign Origin.
	post := map[string]string{"Host": "10.0.0.5:8080", "Cookie": CookieName + "=" + tok, "Origin": "http://evil.example", "Content-Type": "application/json"}
	if res := do(t, h, "POST", "/api/reset", post, `{}`); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST with the token from another origin: %d, want 403", res.StatusCode)
	}
	// Any Host is fine off loopback (the token is the check).
	post["Origin"] = "http://10.0.0.5:8080"
	post["Content-Type"] = "text/plain"
	if res := do(t, h, "POST", "/api/reset", post, `{}`); res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("POST with the token from the page: %d, want 415 (past the guard)", res.StatusCode)
	}
}

// Several browsers on one hub: each gets the last state on connect and
// every event after, over a real socket.
func TestEventsReachEveryBrowser(t *testing.T) {
	s := newTest(t, "127.0.0.1:0", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	s.Hub().Publish("state", []byte(`{"n":1}`))
	url := "http://" + ln.Addr().String() + "/events"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var readers []*bufio.Reader
	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		readers = append(readers, bufio.NewReader(res.Body))
	}
	next := func(r *bufio.Reader) (string, string) {
		var name, data string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && name != "":
				return name, data
			}
		}
	}
	for i, r := range readers {
		if n, d := next(r); n != "state" || d != `{"n":1}` {
			t.Errorf("browser %d first got %s %s, want the last state", i, n, d)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); s.Hub().Clients() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	s.Hub().Publish("calls", []byte(`{"calls":[]}`))
	s.Hub().Publish("state", []byte(`{"n":2}`))
	for i, r := range readers {
		n1, _ := next(r)
		n2, d2 := next(r)
		if n1 != "calls" || n2 != "state" || d2 != `{"n":2}` {
			t.Errorf("browser %d got %s then %s %s", i, n1, n2, d2)
		}
	}
	if last, ok := s.Hub().Last("state"); !ok || string(last.Data) != `{"n":2}` {
		t.Errorf("last state %s", last.Data)
	}
}

// A browser that stops reading loses its stream; the others keep theirs.
func TestSlowBrowserIsDropped(t *testing.T) {
	h := NewHub()
	slow, _ := h.subscribe()
	fast, _ := h.subscribe()
	for i := range 100 {
		h.Publish("state", []byte{byte('0' + i%10)})
		select {
		case <-fast:
		default:
			t.Fatal("the reading browser missed an event")
		}
	}
	if h.Clients() != 1 {
		t.Errorf("%d browsers left, want the reading one", h.Clients())
	}
	n := 0
	for range slow {
		n++
	}
	if n != cap(slow) {
		t.Errorf("the slow browser's stream held %d, want %d then closed", n, cap(slow))
	}
}
