package doctor

import (
	"fmt"
	"strings"
	"time"
)

// WebRTCState is one browser call at the SBC's media gateway (sbc status
// "webrtc"): the gateway's ICE state and the candidates each side offered.
type WebRTCState struct {
	Name string
	ICE  string // new, checking, connected, completed, disconnected, failed, closed
	// Age is how long ago the gateway made the call.
	Age          time.Duration
	Local        []string // the gateway's a=candidate values
	Remote       []string // the browser's
	SelectedPair string
	// FromBrowser is how many RTP packets the gateway got from the browser:
	// non-zero means ICE worked once (the browser went away since).
	FromBrowser uint64
}

// iceSettle is how long a call may stay in new/checking: the browser's
// checks reach an ICE-lite gateway within a second or two of the answer,
// and Chromium gives up after about 30 s.
const iceSettle = 15 * time.Second

// iceFailed: "ICE failed: no usable pair". The gateway has no pair to send
// on (ICE failed, or still new/checking long after the answer): the call
// is set up in SIP and silent both ways. What the browser offered says
// why: no candidates at all (relay-only with TURN unreachable), only ones
// the gateway cannot reach — or ICE worked and the browser went away.
func iceFailed(w WebRTCState) []Finding {
	stuck := (w.ICE == "new" || w.ICE == "checking") && w.Age > iceSettle
	if w.ICE != "failed" && !stuck {
		return nil
	}
	types := map[string]int{}
	for _, c := range w.Remote {
		types[candidateType(c)]++
	}
	var why, fix string
	switch {
	case w.FromBrowser > 0:
		why = fmt.Sprintf("ICE worked (%d packets came from the browser), then the browser stopped answering the gateway's consent checks", w.FromBrowser)
		fix = "a tab closed without a BYE, or the browser's NAT mapping changed (siplab set router-w ... flushes it): hang up and call again; the gateway releases the call at the BYE"
	case len(w.Remote) == 0:
		why = "the browser offered no candidate at all"
		fix = "a relay-only browser (policy relay) needs the lab TURN: does the page get a turn: URL (siplab exec sbc get: webrtc_ice_servers), is stunturn up (siplab status), are its credentials the user's SIP password? Or drop the relay-only policy"
	case types["relay"] == 0 && types["srflx"] == 0:
		why = "the browser offered only host candidates (" + strings.Join(hostsOf(w.Remote), ", ") + "), no STUN or TURN ones"
		fix = "give the page the lab STUN/TURN (siplab set sbc webrtc_ice_servers stun:203.0.113.20:3478,turn:203.0.113.20:3478, then reload the page); check that its checks leave its NAT (siplab status: the router's mappings)"
	default:
		why = fmt.Sprintf("the browser offered %d candidate(s) (%s) but none of its checks reached the gateway", len(w.Remote), typeList(types))
		fix = "read the browser site's router capture (router-w/wan): STUN checks to the gateway's ICE port, and their answers?"
	}
	state := w.ICE
	if stuck {
		state = fmt.Sprintf("%s after %s", w.ICE, w.Age.Round(time.Second))
	}
	where := "sbc (status webrtc " + w.Name + ")"
	ev := []Evidence{
		{Iface: where, What: "ice " + state + ", no selected pair"},
		{Iface: where, What: "browser candidates: " + orNone(w.Remote)},
	}
	if len(w.Local) > 0 {
		ev = append(ev, Evidence{Iface: where, What: "gateway candidates: " + orNone(w.Local)})
	}
	return []Finding{{
		Rule: "state-ice", Severity: Error,
		Summary:  fmt.Sprintf("ICE failed: no usable pair for browser call %s — %s: the call is up in SIP with no audio either way", w.Name, why),
		Fix:      fix,
		Evidence: ev,
	}}
}

// candidateType is the typ of an a=candidate value ("... typ srflx raddr ...").
func candidateType(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1]
		}
	}
	return "?"
}

// hostsOf is the address:port of each candidate.
func hostsOf(cands []string) []string {
	var out []string
	for _, c := range cands {
		if f := strings.Fields(c); len(f) >= 6 {
			out = append(out, f[4]+":"+f[5])
		}
	}
	return out
}

func typeList(types map[string]int) string {
	var out []string
	for _, t := range []string{"host", "srflx", "prflx", "relay", "?"} {
		if types[t] > 0 {
			out = append(out, fmt.Sprintf("%d %s", types[t], t))
		}
	}
	return strings.Join(out, ", ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " | ")
}
