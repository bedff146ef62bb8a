package webphone

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/internal/browsertest"
)

func TestHandlerChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		bad  string
	}{
		{"SBC's own page", Config{Domain: "siplab.test", ICEServers: []string{"stun:203.0.113.20:3478"}}, ""},
		{"console's page", Config{Domain: "siplab.test", WSURL: "wss://203.0.113.5:8443/"}, ""},
		{"no domain", Config{}, "domain"},
		{"http ICE server", Config{Domain: "siplab.test", ICEServers: []string{"http://x"}}, "want stun: or turn:"},
		{"https WebSocket", Config{Domain: "siplab.test", WSURL: "https://203.0.113.5:8443/"}, "want wss://"},
		{"WebSocket without host", Config{Domain: "siplab.test", WSURL: "wss:///"}, "want wss://"},
		{"bad policy", Config{Domain: "siplab.test", ICETransportPolicy: "some"}, "policy"},
	} {
		_, err := Handler(tc.cfg)
		if (err != nil) != (tc.bad != "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%s: Handler error %v, want %q", tc.name, err, tc.bad)
		}
	}
}

// config.json carries the live part of the moment, or answers 503 with
// the reason the page then shows.
func TestConfigJSONIsLive(t *testing.T) {
	live := Live{ICEServers: []string{"stun:203.0.113.20:3478"}, WSURL: "wss://203.0.113.5:8443/"}
	var liveErr error
	h, err := Handler(Config{Domain: "siplab.test", Live: func() (Live, error) { return live, liveErr }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func() (int, string) {
		t.Helper()
		r, err := http.Get(srv.URL + "/phone/config.json")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name     string
		live     Live
		err      error
		code     int
		contains string
	}{
		{"SBC's WSS and STUN", live, nil, 200, `{"domain":"siplab.test","ice_servers":["stun:203.0.113.20:3478"],"ws_url":"wss://203.0.113.5:8443/"}`},
		{"no ICE servers", Live{WSURL: "wss://203.0.113.5:8443/"}, nil, 200, `"ice_servers":[]`},
		{"no WSS URL: the page's origin", Live{}, nil, 200, `{"domain":"siplab.test","ice_servers":[]}`},
		{"the SBC gone", Live{}, errors.New("the lab has no SBC"), 503, "the lab has no SBC"},
		{"a bad live ICE server", Live{ICEServers: []string{"x:1"}}, nil, 503, `ICE server "x:1"`},
		{"a bad live WSS URL", Live{WSURL: "203.0.113.5:8443"}, nil, 503, "want wss://"},
	} {
		live, liveErr = tc.live, tc.err
		code, body := get()
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.code, tc.contains)
		}
	}
}

// pageState is the part of window.phoneState these tests read.
type pageState struct {
	Ready  bool   `json:"ready"`
	Error  string `json:"error"`
	Notice string `json:"notice"`
	Secure bool   `json:"secure"`
	WSURL  string `json:"wsURL"`
}

func waitPage(t *testing.T, ctx context.Context, what string, ok func(pageState) bool) pageState {
	t.Helper()
	var st pageState
	for deadline := time.Now().Add(10 * time.Second); ; {
		js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.phoneState || {})`))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: page state %s", what, js)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The page, in real Chromium, says what the user must fix outside it.
// Served from another origin than its SIP WebSocket (as the console does)
// to a browser that does not trust the WebSocket's certificate, Register
// fails and the page names the certificate and links the address to
// accept it at. Opened at a host name that is not localhost over http, it
// is not a secure context (no microphone) and says so at once. Without
// its settings it says why.
func TestPageTellsWhatToFix(t *testing.T) {
	// A TLS server with a certificate no browser trusts: the SBC's WSS
	// listener before the intern accepted the lab certificate.
	wss := httptest.NewUnstartedServer(http.NotFoundHandler())
	// The browser's refusals are the point, not news.
	wss.Config.ErrorLog = log.New(io.Discard, "", 0)
	wss.StartTLS()
	defer wss.Close()
	wsURL := "wss://" + wss.Listener.Addr().String() + "/"
	var liveErr error
	h, err := Handler(Config{Domain: "siplab.test", Live: func() (Live, error) { return Live{WSURL: wsURL}, liveErr }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: h}
	go page.Serve(ln)
	defer page.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// phone.test resolves to 127.0.0.1 in this browser only: an http page
	// on a name that is not localhost, as a classroom address would be.
	ctx := browsertest.New(t, "to test the web phone's notices", 1200, 800,
		chromedp.Flag("host-resolver-rules", "MAP phone.test 127.0.0.1"),
		chromedp.Flag("use-fake-ui-for-media-stream", true))

	if err := chromedp.Do(ctx, chromedp.Navigate("http://127.0.0.1:"+strconv.Itoa(port)+"/phone/?user=dave")); err != nil {
		t.Fatal(err)
	}
	st := waitPage(t, ctx, "page on 127.0.0.1", func(s pageState) bool { return s.Ready })
	if !st.Secure || st.Notice != "" || st.WSURL != wsURL {
		t.Fatalf("http://127.0.0.1: secure %v, notice %q, WebSocket %q (want a secure context, no notice, %s)", st.Secure, st.Notice, st.WSURL, wsURL)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("register"))); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "Register against an untrusted certificate", func(s pageState) bool { return s.Notice != "" })
	httpsURL := "https://" + wss.Listener.Addr().String() + "/"
	if !strings.Contains(st.Notice, "Cannot open the SIP WebSocket "+wsURL) || !strings.Contains(st.Notice, "accepted the lab's certificate") ||
		!strings.Contains(st.Notice, httpsURL) || !strings.Contains(st.Error, "failed") {
		t.Errorf("notice %q, error %q: want the certificate named and %s to accept it at", st.Notice, st.Error, httpsURL)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#notice a').href`))
	if err != nil || link != httpsURL {
		t.Errorf("notice link %q (%v), want %s", link, err, httpsURL)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate("http://phone.test:"+strconv.Itoa(port)+"/phone/")); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "page on http://phone.test", func(s pageState) bool { return s.Ready })
	if st.Secure || !strings.Contains(st.Notice, "not a secure context (http://phone.test:"+strconv.Itoa(port)+")") || !strings.Contains(st.Notice, "127.0.0.1") {
		t.Errorf("http://phone.test: secure %v, notice %q: want the insecure context named", st.Secure, st.Notice)
	}
	// Call fails at once with the reason, not a TypeError from a missing
	// API after the SIP went out.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "Call without a microphone", func(s pageState) bool { return s.Error != "" })
	if !strings.Contains(st.Error, "no microphone: this page is not a secure context") {
		t.Errorf("call error %q, want the missing secure context", st.Error)
	}
	// A WebSocket failure then keeps the secure-context notice in front.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("register"))); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "Register on http://phone.test", func(s pageState) bool { return strings.Contains(s.Notice, "Cannot open") })
	if !strings.HasPrefix(st.Notice, "This page is not a secure context") {
		t.Errorf("notice %q: the secure-context part is gone", st.Notice)
	}

	// No settings (the console cannot read the SBC): the reason, at once.
	liveErr = errors.New("the lab has no SBC")
	if err := chromedp.Do(ctx, chromedp.Navigate("http://127.0.0.1:"+strconv.Itoa(port)+"/phone/")); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "page without settings", func(s pageState) bool { return s.Ready })
	if !strings.Contains(st.Notice, "no settings (config.json 503: the lab has no SBC)") {
		t.Errorf("notice %q: want the settings' error", st.Notice)
	}
}
