package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/uaclient"
)

// The browser calls in the Calls panel come from the SBC's status document
// (the gateway's per-call stats, "webrtc"), matched with the SBC's calls
// for who talks to whom and with the phones' tones for who hears whom; a
// failed ICE gets the doctor's state-ice reason in words. The status round
// here answers with real sbc and uaclient status documents; the state
// event is read the way the page reads it (/api/state).
func TestStateShowsBrowserCalls(t *testing.T) {
	lab, s, srv := sbcConsole(t)

	now := time.Now()
	set := sbc.DefaultSettings()
	sbcDoc := sbc.Status{AccessWSS: "203.0.113.5:8443", WebRTCICEPolicy: "relay", Settings: set.All(),
		WebRTC: []webrtcgw.Stats{
			// dave calls bob: connected through router-w's mapping.
			{Name: "out-cid", Created: now.Add(-20 * time.Second), ICE: "connected", Peer: "connected", DTLS: "connected", Codec: "PCMU/8000",
				RemoteCandidates: []string{"1 1 udp 1686052607 203.0.113.9 51234 typ srflx raddr 10.99.0.10 rport 51234"},
				SelectedPair:     "host 203.0.113.5:8443 <-> srflx 203.0.113.9:51234",
				ToCore:           webrtcgw.Flow{Packets: 900, ToneHz: 700.4}, ToBrowser: webrtcgw.Flow{Packets: 880, ToneHz: 441}},
			// bob calls dave: the browser's checks came back from an
			// address it never offered.
			{Name: "in-cid", Created: now.Add(-5 * time.Second), ICE: "checking", Peer: "connecting",
				SelectedPair: "host 203.0.113.5:8443 <-> prflx 203.0.113.9:40000",
				ToBrowser:    webrtcgw.Flow{Packets: 12}},
			// A relay-only browser without TURN: no candidate, no pair.
			{Name: "failed-cid", Created: now.Add(-40 * time.Second), ICE: "failed", Peer: "failed"},
		},
		Calls: []sbc.CallStatus{
			{ID: "s1-a", State: sbc.StateAnswered, From: "sip:dave@siplab.test", To: "sip:bob@siplab.test",
				Legs: [2]sbc.LegStatus{{Realm: "access", CallID: "out-cid"}, {Realm: "core", CallID: "core-1"}}},
			{ID: "s2-b", State: sbc.StateRinging, From: "sip:bob@siplab.test", To: "sip:dave@siplab.test",
				Legs: [2]sbc.LegStatus{{Realm: "access", CallID: "bob-cid"}, {Realm: "access", CallID: "in-cid"}}},
		},
	}
	docs := map[string]any{"sbc": sbcDoc, "bob": uaclient.Status{Name: "bob", User: "bob", ToneHz: 440}, "alice": uaclient.Status{Name: "alice", ToneHz: 700}}
	lab.nodes = nil
	for _, n := range []struct{ name, role string }{{"alice", "phone"}, {"bob", "phone"}, {"sbc", "sbc"}} {
		b, err := json.Marshal(docs[n.name])
		if err != nil {
			t.Fatal(err)
		}
		lab.nodes = append(lab.nodes, labops.NodeStatus{Node: labctl.Node{Name: n.name, Role: n.role, Running: true}, Daemon: b})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.poller.statusLoop(ctx)

	var st stateDoc
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := get(t, srv.URL+"/api/state?event=state")
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("/api/state: %v\n%s", err, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/state: %d %s", code, body)
		}
	}
	byID := map[string]browserCallDoc{}
	for _, c := range st.BrowserCalls {
		byID[c.ID] = c
	}
	if len(byID) != 3 {
		t.Fatalf("browser calls %+v, want the gateway's 3", st.BrowserCalls)
	}
	for _, tc := range []struct {
		id   string
		want browserCallDoc
	}{
		{"out-cid", browserCallDoc{Node: "sbc", ID: "out-cid", SBCCall: "s1-a", User: "dave", Peer: "bob", Direction: "out", State: "answered",
			ICE: "connected", DTLS: "connected", Codec: "PCMU/8000",
			Pair: "srflx 203.0.113.9:51234 ↔ host 203.0.113.5:8443", BrowserType: "srflx", GatewayType: "host",
			FromBrowser: flowDoc{Packets: 900, ToneHz: 700.4, Hears: "bob hears dave (700 Hz)"},
			ToBrowser:   flowDoc{Packets: 880, ToneHz: 441, Hears: "dave hears bob (441 Hz)"}}},
		{"in-cid", browserCallDoc{Node: "sbc", ID: "in-cid", SBCCall: "s2-b", User: "dave", Peer: "bob", Direction: "in", State: "ringing",
			ICE: "checking", DTLS: "connecting",
			Pair: "prflx 203.0.113.9:40000 ↔ host 203.0.113.5:8443", BrowserType: "prflx", GatewayType: "host",
			FromBrowser: flowDoc{Hears: "bob hears nothing (no packets)"},
			ToBrowser:   flowDoc{Packets: 12, Hears: "dave hears no tone"}}},
	} {
		if got := byID[tc.id]; got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.id, got, tc.want)
		}
	}
	f := byID["failed-cid"]
	if f.User != "browser" || f.SBCCall != "" || f.Pair != "" || f.ICE != "failed" || f.DTLS != "failed" {
		t.Errorf("failed call without an SBC call: %+v", f)
	}
	if !strings.Contains(f.ICEFailed, "ICE failed") || !strings.Contains(f.ICEFailed, "no candidate at all") || !strings.Contains(f.ICEFix, "TURN") {
		t.Errorf("failed call: the doctor's reason %q, fix %q", f.ICEFailed, f.ICEFix)
	}
	for _, id := range []string{"out-cid", "in-cid"} {
		if byID[id].ICEFailed != "" {
			t.Errorf("%s: ICE not failed, yet %q", id, byID[id].ICEFailed)
		}
	}

	// The console's phone page takes the SBC's ICE policy.
	code, body := get(t, srv.URL+"/phone/config.json")
	var conf struct {
		Policy string `json:"ice_transport_policy"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &conf) != nil || conf.Policy != "relay" {
		t.Errorf("config.json %d %s: want the SBC's ICE policy relay", code, body)
	}

	// The calls end: the list empties (an empty list, not a missing one).
	sbcDoc.WebRTC = nil
	b, _ := json.Marshal(sbcDoc)
	lab.mu.Lock()
	lab.nodes[2].Daemon = b
	lab.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := get(t, srv.URL+"/api/state?event=state")
		if strings.Contains(body, `"browser_calls":[]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the calls ended: %.400s", body)
		}
	}
}

// browserCalls tells only what the documents say: no SBC, an SBC without
// a gateway or a document it cannot read give no browser call.
func TestBrowserCallsWithoutGateway(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []labops.NodeStatus
	}{
		{"no nodes", nil},
		{"sbc without wss", []labops.NodeStatus{{Node: labctl.Node{Name: "sbc", Role: "sbc"}, Daemon: json.RawMessage(`{"access":"203.0.113.5:5060"}`)}}},
		{"sbc does not answer", []labops.NodeStatus{{Node: labctl.Node{Name: "sbc", Role: "sbc"}, Error: "exit status 1"}}},
		{"not a status", []labops.NodeStatus{{Node: labctl.Node{Name: "sbc", Role: "sbc"}, Daemon: json.RawMessage(`[1,2]`)}}},
	} {
		if got := browserCalls(tc.nodes, time.Now()); got == nil || len(got) != 0 {
			t.Errorf("%s: %+v, want an empty list", tc.name, got)
		}
	}
}
