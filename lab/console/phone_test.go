package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/sbc"
)

// sbcLab is a Docker lab at an empty folder (no request reaches Docker)
// whose status round answers with the SBC document a test sets: the
// console's side of the browser phone is what is tested, the SBC's own
// status is sbc's.
type sbcLab struct {
	*DockerLab
	mu    sync.Mutex
	nodes []labops.NodeStatus
	err   error
}

func (l *sbcLab) Status(context.Context) ([]labops.NodeStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nodes, l.err
}

// setSBC makes the next status round show an SBC with this WSS listener
// and live setting webrtc_ice_servers.
func (l *sbcLab) setSBC(t *testing.T, wss, ice string) {
	t.Helper()
	set := sbc.DefaultSettings()
	if err := set.Set(sbc.SettingWebRTCICEServers, ice); err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(sbc.Status{AccessWSS: wss, Settings: set.All()})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nodes = []labops.NodeStatus{
		{Node: labctl.Node{Name: "proxy", Role: "proxy", Running: true}, Daemon: json.RawMessage(`{}`)},
		{Node: labctl.Node{Name: "sbc", Role: "sbc", Running: true}, Daemon: doc},
	}
	l.err = nil
}

// sbcConsole is a console on an sbcLab, its status loop not started (the
// test starts it when its lab is set), served over a real socket.
func sbcConsole(t *testing.T) (*sbcLab, *Server, *httptest.Server) {
	t.Helper()
	lab := &sbcLab{DockerLab: &DockerLab{R: &labctl.Runner{Dir: t.TempDir()}, Root: t.TempDir()}}
	s, err := New(Config{Listen: "127.0.0.1:0", Lab: lab, StatusEvery: 20 * time.Millisecond, CaptureEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return lab, s, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, string(b)
}

// The console serves the browser phone on its own port: the page, and a
// config.json whose SIP WebSocket is the SBC's WSS listener and whose
// STUN/TURN servers are the SBC's live setting, as of the last status
// round (a `siplab set sbc webrtc_ice_servers` reaches the next page
// load). Without a lab, an SBC or its WSS listener, config.json says why.
func TestConsoleServesBrowserPhone(t *testing.T) {
	lab, s, srv := sbcConsole(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	code, body := get(t, srv.URL+"/phone/config.json")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "has not read the lab") {
		t.Errorf("before any status round: %d %q, want 503 naming the missing lab", code, body)
	}
	go s.poller.statusLoop(ctx)

	code, body = get(t, srv.URL+"/phone/")
	if code != http.StatusOK || !strings.Contains(body, `<script src="phone.js">`) || !strings.Contains(body, `id="notice"`) {
		t.Fatalf("/phone/: %d, not the phone page:\n%.300s", code, body)
	}
	if code, _ := get(t, srv.URL+"/phone/phone.js"); code != http.StatusOK {
		t.Errorf("/phone/phone.js: %d", code)
	}

	type pageConf struct {
		Domain     string   `json:"domain"`
		WSURL      string   `json:"ws_url"`
		ICEServers []string `json:"ice_servers"`
	}
	// waitConf polls config.json until it shows want (the status loop's
	// next round) or fails.
	waitConf := func(what string, ok func(int, string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, body := get(t, srv.URL+"/phone/config.json")
			if ok(code, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: config.json %d %s", what, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		name, wss, ice string
		want           pageConf
	}{
		{"the lab's SBC", "203.0.113.5:8443", "stun:203.0.113.20:3478,turn:203.0.113.20:3478",
			pageConf{"siplab.test", "wss://203.0.113.5:8443/", []string{"stun:203.0.113.20:3478", "turn:203.0.113.20:3478"}}},
		{"webrtc_ice_servers changed", "203.0.113.5:8443", "turn:203.0.113.20:3478",
			pageConf{"siplab.test", "wss://203.0.113.5:8443/", []string{"turn:203.0.113.20:3478"}}},
		{"webrtc_ice_servers none", "203.0.113.5:8443", "none",
			pageConf{"siplab.test", "wss://203.0.113.5:8443/", []string{}}},
	} {
		lab.setSBC(t, tc.wss, tc.ice)
		waitConf(tc.name, func(code int, body string) bool {
			var got pageConf
			if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
				return false
			}
			return got.Domain == tc.want.Domain && got.WSURL == tc.want.WSURL && strings.Join(got.ICEServers, " ") == strings.Join(tc.want.ICEServers, " ") && got.ICEServers != nil
		})
	}

	lab.setSBC(t, "", "none")
	waitConf("an SBC without -wss", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no SIP WebSocket listener")
	})
	lab.mu.Lock()
	lab.nodes = lab.nodes[:1]
	lab.mu.Unlock()
	waitConf("a lab without an SBC", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no SBC")
	})
	lab.mu.Lock()
	lab.nodes = []labops.NodeStatus{{Node: labctl.Node{Name: "sbc", Role: "sbc"}, Error: "exit status 1"}}
	lab.mu.Unlock()
	waitConf("an SBC that does not answer", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "does not answer: exit status 1")
	})
	lab.mu.Lock()
	lab.nodes, lab.err = nil, labctl.ErrNotUp
	lab.mu.Unlock()
	waitConf("the lab down", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "the lab: "+labctl.ErrNotUp.Error())
	})
}
