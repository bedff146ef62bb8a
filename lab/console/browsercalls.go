package console

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/trace/doctor"
	"github.com/siplab/siplab/uaclient"
)

// browserCallDoc is one browser call through the SBC's WebRTC gateway
// (sbc status "webrtc"), sent in the "state" event next to the nodes: the
// Calls panel lists it with the phones' calls. The page only draws it; what
// it means (who, which pair, who hears whom, why ICE failed) is read here,
// with the same code as the doctor's state-ice rule.
type browserCallDoc struct {
	// Node is the SBC, ID the browser's Call-ID (the gateway's name for
	// the call), SBCCall the SBC's call id ("" when it has none: the SIP
	// side is gone).
	Node    string `json:"node"`
	ID      string `json:"id"`
	SBCCall string `json:"sbc_call,omitempty"`
	// User is the browser's user (dave), Peer the other party (bob);
	// Direction is out when the browser called, in when it was called.
	User      string `json:"user"`
	Peer      string `json:"peer"`
	Direction string `json:"direction"`
	// State is the SBC's call state (ringing, answered, ended).
	State string `json:"state"`
	ICE   string `json:"ice"`
	// DTLS is the DTLS transport's state (the PeerConnection's when the
	// gateway does not tell it apart).
	DTLS  string `json:"dtls"`
	Codec string `json:"codec,omitempty"`
	// Pair is the selected pair, the browser's side first: "srflx
	// 203.0.113.9:51234 ↔ host 203.0.113.5:8443". BrowserType and
	// GatewayType are the two candidate types.
	Pair        string `json:"pair,omitempty"`
	BrowserType string `json:"browser_type,omitempty"`
	GatewayType string `json:"gateway_type,omitempty"`
	// FromBrowser is the browser's audio relayed to the peer, ToBrowser
	// the peer's relayed to the browser.
	FromBrowser flowDoc `json:"from_browser"`
	ToBrowser   flowDoc `json:"to_browser"`
	// ICEFailed is the doctor's state-ice finding in words, ICEFix its
	// fix: set only when ICE failed (or is stuck).
	ICEFailed string `json:"ice_failed,omitempty"`
	ICEFix    string `json:"ice_fix,omitempty"`
}

// flowDoc is one direction through the gateway.
type flowDoc struct {
	Packets uint64  `json:"packets"`
	ToneHz  float64 `json:"tone_hz"`
	// Hears says who hears whom on it: "bob hears dave (700 Hz)".
	Hears string `json:"hears"`
}

// browserCalls reads the browser calls out of one status round: the
// gateway's calls from the SBC's document, matched with the SBC's calls
// (by the access leg's Call-ID) for who is talking, and with the phones'
// tones for whom the browser hears.
func browserCalls(nodes []labops.NodeStatus, now time.Time) []browserCallDoc {
	out := []browserCallDoc{}
	tones := phoneTones(nodes)
	for _, n := range nodes {
		if n.Role != "sbc" || len(n.Daemon) == 0 {
			continue
		}
		var st sbc.Status
		if json.Unmarshal(n.Daemon, &st) != nil {
			continue
		}
		for _, w := range st.WebRTC {
			out = append(out, browserCall(n.Name, w, st.Calls, tones, now))
		}
	}
	return out
}

// phoneTone is the test tone a phone sends: hearing it names the phone.
type phoneTone struct {
	name string
	hz   float64
}

func phoneTones(nodes []labops.NodeStatus) []phoneTone {
	var out []phoneTone
	for _, n := range nodes {
		if (n.Role != "phone" && n.Role != "carrier") || len(n.Daemon) == 0 {
			continue
		}
		var st uaclient.Status
		if json.Unmarshal(n.Daemon, &st) == nil && st.ToneHz > 0 {
			out = append(out, phoneTone{n.Name, st.ToneHz})
		}
	}
	return out
}

func browserCall(node string, w webrtcgw.Stats, calls []sbc.CallStatus, tones []phoneTone, now time.Time) browserCallDoc {
	d := browserCallDoc{Node: node, ID: w.Name, ICE: w.ICE, DTLS: w.DTLS, Codec: w.Codec, User: "browser", Peer: "?", Direction: "out"}
	if d.DTLS == "" {
		d.DTLS = w.Peer
	}
	// The newest SBC call whose access leg is the browser's dialog.
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		leg := -1
		for j, l := range c.Legs {
			if l.Realm == "access" && l.CallID == w.Name {
				leg = j
			}
		}
		if leg < 0 {
			continue
		}
		// Leg 0 is the caller's.
		d.SBCCall, d.State = c.ID, string(c.State)
		if leg == 0 {
			d.User, d.Peer = userOf(c.From), userOf(c.To)
		} else {
			d.User, d.Peer, d.Direction = userOf(c.To), userOf(c.From), "in"
		}
		break
	}
	if gw, browser, ok := strings.Cut(w.SelectedPair, "<->"); ok {
		gw, browser = strings.TrimSpace(gw), strings.TrimSpace(browser)
		d.Pair = browser + " ↔ " + gw
		d.BrowserType, _, _ = strings.Cut(browser, " ")
		d.GatewayType, _, _ = strings.Cut(gw, " ")
	}
	d.FromBrowser = flowDoc{Packets: w.ToCore.Packets, ToneHz: w.ToCore.ToneHz,
		Hears: hears(d.Peer, w.ToCore, func(float64) string { return d.User })}
	d.ToBrowser = flowDoc{Packets: w.ToBrowser.Packets, ToneHz: w.ToBrowser.ToneHz,
		Hears: hears(d.User, w.ToBrowser, func(hz float64) string { return toneOf(tones, hz) })}
	for _, f := range doctor.CheckState(doctor.LabState{WebRTC: []doctor.WebRTCState{labops.WebRTCState(w, now)}}) {
		if f.Rule == "state-ice" {
			d.ICEFailed, d.ICEFix = f.Summary, f.Fix
		}
	}
	return d
}

// hears is one direction in words: who hears what, and from whom.
func hears(listener string, f webrtcgw.Flow, source func(hz float64) string) string {
	switch {
	case f.Packets == 0:
		return listener + " hears nothing (no packets)"
	case f.ToneHz <= 0:
		return listener + " hears no tone"
	}
	return listener + " hears " + source(f.ToneHz) + " (" + formatHz(f.ToneHz) + ")"
}

// toneOf names the phone whose test tone hz is.
func toneOf(tones []phoneTone, hz float64) string {
	for _, t := range tones {
		if math.Abs(hz-t.hz) <= max(15, 0.03*t.hz) {
			return t.name
		}
	}
	return "a tone no lab phone sends"
}

func formatHz(hz float64) string {
	return strconv.FormatFloat(math.Round(hz), 'f', 0, 64) + " Hz"
}

// userOf is a SIP URI's user ("sip:dave@siplab.test" → dave).
func userOf(uri string) string {
	u := strings.TrimPrefix(strings.TrimPrefix(uri, "sips:"), "sip:")
	if user, _, ok := strings.Cut(u, "@"); ok {
		return user
	}
	return u
}
