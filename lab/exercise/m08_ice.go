package exercise

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/browsersite"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/trace/doctor"
	"github.com/siplab/siplab/uaclient"
	"github.com/siplab/siplab/webphone/headless"
)

// The ICE exercises (issue 16, docs/webrtc.md): a browser on the browser
// site calls bob through the SBC's WebRTC gateway (ICE-lite on
// 203.0.113.5). Each check places the call itself, from headless Chromium
// behind router-w (lab/browsersite), and reads the browser's getStats,
// the gateway's per-call stats, bob's phone, router-w and the doctor while
// the call is up.

const (
	labSTUN     = "stun:203.0.113.20:3478"
	labTURN     = "turn:203.0.113.20:3478"
	labICE      = labSTUN + "," + labTURN
	routerWWAN  = "203.0.113.9"
	labTURNAddr = "203.0.113.20"
)

// bobBehindSBC: the browser's media comes back through the SBC's relay
// only if bob takes his calls through the SBC too (docs/webrtc.md, step 2).
var bobBehindSBC = []Step{
	RunExpect("set bob proxy 203.0.113.5:5060", "bob registers through the SBC: the browser's calls reach him through its relay"),
	Run("exec bob unregister"),
	Run("exec bob register"),
}

// WebCall is what a browser probe call found, read while it was up.
type WebCall struct {
	Policy  string
	Out     browsersite.Outcome
	Gateway *webrtcgw.Stats
	// Bob is bob's side of the call, nil if he never saw it.
	Bob *uaclient.CallStatus
	// RouterW is router-w's status during the call.
	RouterW *natrouter.Status
	// ICEFinding is the doctor's state-ice finding for the call, if any.
	ICEFinding *doctor.Finding
}

// GatewaySees is the browser's side of the gateway's selected pair: its
// candidate type and address ("prflx", 203.0.113.9:40123).
func (w WebCall) GatewaySees() (typ string, addr netip.AddrPort, ok bool) {
	if w.Gateway == nil {
		return "", netip.AddrPort{}, false
	}
	_, browser, found := strings.Cut(w.Gateway.SelectedPair, "<->")
	f := strings.Fields(browser)
	if !found || len(f) != 2 {
		return "", netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(f[1])
	return f[0], ap, err == nil
}

// BrowserCall places a browser call dave → bob with the page's ICE policy
// ("" = the SBC's) and records what it found as evidence in r.
func (p *Probe) BrowserCall(ctx context.Context, r *Result, policy string) (WebCall, bool) {
	wc := WebCall{Policy: policy}
	b, ok := p.Lab.(BrowserLab)
	if !ok {
		r.require(false, "this lab has no browser site to call from")
		return wc, false
	}
	start := time.Now()
	o := browsersite.CallOptions{User: "dave", Password: "dave-secret", Target: "bob", Policy: policy}
	out, err := b.BrowserCall(ctx, o, func(ctx context.Context, _ headless.State) error {
		if st, err := p.SBC(ctx); err == nil {
			for i := len(st.WebRTC) - 1; i >= 0; i-- {
				if !st.WebRTC[i].Created.Before(start) {
					wc.Gateway = &st.WebRTC[i]
					break
				}
			}
		}
		if st, err := p.Phone(ctx, "bob"); err == nil {
			for i := len(st.Calls) - 1; i >= 0; i-- {
				if !st.Calls[i].Started.Before(start) {
					wc.Bob = &st.Calls[i]
					break
				}
			}
		}
		if st, err := p.Router(ctx, "router-w"); err == nil {
			wc.RouterW = &st
		}
		wc.ICEFinding = iceFinding(wc.Gateway)
		return nil
	})
	wc.Out = out
	pol := policy
	if pol == "" {
		pol = "all"
	}
	if err != nil {
		r.require(false, "the browser call dave → bob (ICE policy %s) could not be placed: %v", pol, err)
		return wc, false
	}
	pg := out.Page
	r.add("     browser call dave → bob from %s behind router-w (ICE policy %s): answered after %s; browser ICE %s",
		browsersite.Addr, pol, out.Setup.Round(100*time.Millisecond), orNone(pg.ICE))
	var cands []string
	for _, c := range pg.Candidates {
		if c.Side == "local" {
			cands = append(cands, c.Type+" "+c.Address)
		}
	}
	r.add("     the browser's candidates: %s", orNone(strings.Join(cands, ", ")))
	for _, pr := range pg.Pairs {
		r.add("     pair %s → %s: %s, checks %d sent / %d answered", pr.Local, pr.Remote, pr.State, pr.RequestsSent, pr.ResponsesReceived)
	}
	if s := pg.Selected; s != nil {
		r.add("     the browser's selected pair: %s <-> %s", s.Local, s.Remote)
	}
	if g := wc.Gateway; g != nil {
		r.add("     gateway (sbc status): %s ice %s, pair %s; browser→core %d pkts %.0f Hz, core→browser %d pkts %.0f Hz",
			g.Name, g.ICE, orNone(g.SelectedPair), g.ToCore.Packets, g.ToCore.ToneHz, g.ToBrowser.Packets, g.ToBrowser.ToneHz)
	}
	if wc.RouterW != nil {
		r.add("     router-w (%s) maps the browser: %s", wc.RouterW.Preset.Name, orNone(strings.Join(browserMappings(*wc.RouterW), ", ")))
	}
	return wc, true
}

// requireAudio is the audio both ways, as the lines the docs quote.
func requireAudio(r *Result, wc WebCall) {
	hears := "nothing"
	if in := wc.Out.Page.Inbound; in != nil {
		hears = fmt.Sprintf("%d packets, level %.2f", in.PacketsReceived, in.AudioLevel)
	}
	r.require(wc.Out.Hearing, "the browser hears bob on a selected pair: %s", hears)
	bob := "bob never saw the call"
	if wc.Bob != nil {
		bob = fmt.Sprintf("%.0f Hz", wc.Bob.ToneHz)
	}
	r.require(wc.Bob != nil && tonesMatch(wc.Bob.ToneHz, headless.ToneHz), "bob heard the browser's %d Hz: %s", headless.ToneHz, bob)
}

// labInternet is where the lab's servers are: router-w's other mappings
// of the browser are Chromium's own DNS lookups, dying at its unused route.
var labInternet = netip.MustParsePrefix("203.0.113.0/24")

// browserMappings are router-w's mappings of the browser towards the lab.
func browserMappings(st natrouter.Status) []string {
	var out []string
	for _, m := range st.Mappings {
		if m.Inside.Addr().String() == browsersite.Addr && labInternet.Contains(m.Remote.Addr()) {
			out = append(out, fmt.Sprintf("%s %s → %s (to %s)", m.Proto, m.Inside, m.Outside, m.Remote))
		}
	}
	return out
}

// iceFinding runs the doctor's state rule on the gateway's call.
func iceFinding(g *webrtcgw.Stats) *doctor.Finding {
	if g == nil {
		return nil
	}
	st := doctor.LabState{WebRTC: []doctor.WebRTCState{{Name: g.Name, ICE: g.ICE, Age: time.Since(g.Created),
		Local: g.LocalCandidates, Remote: g.RemoteCandidates, SelectedPair: g.SelectedPair, FromBrowser: g.ToCore.Packets}}}
	for _, f := range doctor.CheckState(st) {
		if f.Rule == "state-ice" {
			return &f
		}
	}
	return nil
}

// checkICESrflx: the browser learns its public address from the lab STUN
// and, through a port-restricted (endpoint-independent mapping) router-w,
// that address is the one the gateway sees: the selected pair uses it.
func checkICESrflx(ctx context.Context, p *Probe) Result {
	r := newResult()
	wc, ok := p.BrowserCall(ctx, &r, "")
	if !ok {
		return r
	}
	srflx := wc.Out.Page.Local("srflx")
	r.require(len(srflx) > 0, "the browser has a srflx candidate (its public address, from a STUN server): %s", orNone(strings.Join(srflx, ", ")))
	typ, addr, seen := wc.GatewaySees()
	r.require(seen && typ == "srflx" && slices.Contains(srflx, addr.String()),
		"the gateway sees the browser at %s: the srflx candidate STUN reported (the same mapping towards STUN and the SBC)", seenAs(typ, addr, seen))
	requireAudio(&r, wc)
	return r
}

// checkICESymmetric: the intern names the browser's address the gateway's
// selected pair uses (type and IP); the call shows that under symmetric
// NAT it is not the one STUN reported.
func checkICESymmetric(ctx context.Context, p *Probe) Result {
	r := newResult()
	answer := strings.Fields(p.Answer)
	if len(answer) == 0 {
		r.require(false, "no answer: which of the browser's addresses does the gateway's selected pair use? siplab exercise check -answer \"<type> <ip>\"")
		return r
	}
	wc, ok := p.BrowserCall(ctx, &r, "")
	if !ok {
		return r
	}
	requireAudio(&r, wc)
	typ, addr, seen := wc.GatewaySees()
	if !r.require(seen, "the gateway's selected pair names the browser's side: %q", pairOf(wc.Gateway)) {
		return r
	}
	srflx := wc.Out.Page.Local("srflx")
	r.require(len(srflx) > 0 && !slices.Contains(srflx, addr.String()),
		"STUN told the browser %s; the gateway sees it at %s: a different mapping per destination", orNone(strings.Join(srflx, ", ")), addr)
	wantIP := ""
	if len(answer) > 1 {
		wantIP = answer[1]
		if ap, err := netip.ParseAddrPort(wantIP); err == nil {
			wantIP = ap.Addr().String() // the port changes with every call
		}
	}
	r.require(answer[0] == typ && wantIP == addr.Addr().String(),
		"your answer %q: the gateway sees the browser as %s %s", p.Answer, typ, addr.Addr())
	return r
}

// answerICESymmetric reads the answer the way the documented fix does:
// the browser's side of the gateway's selected pair during a call.
func answerICESymmetric(ctx context.Context, p *Probe) (string, error) {
	var r Result
	wc, ok := p.BrowserCall(ctx, &r, "")
	if !ok {
		return "", fmt.Errorf("the browser call: %s", strings.Join(r.Evidence, "; "))
	}
	typ, addr, seen := wc.GatewaySees()
	if !seen {
		return "", fmt.Errorf("the gateway has no selected pair: %q", pairOf(wc.Gateway))
	}
	return typ + " " + addr.Addr().String(), nil
}

// checkICETurn: a relay-only browser under symmetric NAT gets audio only
// through the lab TURN; without it the doctor names ICE failed.
func checkICETurn(ctx context.Context, p *Probe) Result {
	r := newResult()
	wc, ok := p.BrowserCall(ctx, &r, "relay")
	if !ok {
		return r
	}
	if f := wc.ICEFinding; f != nil {
		r.require(false, "siplab doctor [%s]: %s", f.Rule, f.Summary)
	}
	relay := wc.Out.Page.Local("relay")
	r.require(len(relay) > 0, "the browser has a relay candidate (a TURN allocation): %s", orNone(strings.Join(relay, ", ")))
	typ, addr, seen := wc.GatewaySees()
	r.require(seen && typ == "relay" && addr.Addr().String() == labTURNAddr,
		"the selected pair uses the relay candidate: the gateway sees the browser at %s", seenAs(typ, addr, seen))
	requireAudio(&r, wc)
	return r
}

func seenAs(typ string, addr netip.AddrPort, seen bool) string {
	if !seen {
		return "no address (no selected pair)"
	}
	return typ + " " + addr.String()
}

func pairOf(g *webrtcgw.Stats) string {
	if g == nil {
		return "no call at the gateway"
	}
	return g.SelectedPair
}

func init() {
	register(&Exercise{
		ID: "08-ice-srflx", Module: module08, Title: "ICE through port-restricted NAT: the srflx candidate",
		Task: "dave's browser sits behind router-w (port-restricted NAT) and calls bob through the SBC's WebRTC gateway. Someone edited the STUN/TURN list " +
			"the SBC gives the page: calls still connect, five seconds late, and the page's ICE table shows no public address for the browser. " +
			"Make the browser learn its public address again, so the selected pair uses the srflx candidate. (The checks place the call from headless Chromium " +
			"on the browser site: run siplab as root, with chromium installed.)",
		Setup: steps(bobBehindSBC, []Step{
			RunExpect("set sbc webrtc_ice_servers stun:203.0.113.21:3478", "the page's one STUN server is 203.0.113.21, where nobody answers; no TURN"),
		}),
		Observe: []string{
			"`siplab webphone call dave bob` (or your browser at https://203.0.113.5:8443/phone/?user=dave&target=bob): answered after ~5 s — the page waits that long for ICE gathering; " +
				"one candidate, host 192.168.9.10: **no srflx**; the gateway sees the browser as prflx (learnt from its checks).",
			"`siplab exec sbc get`: `webrtc_ice_servers` — what the page is told (config.json).",
			"`siplab exec stun status`: no Binding request from 203.0.113.9. `tshark -r captures/router-w.pcapng -Y stun`: the browser's Binding requests to 203.0.113.21:3478 " +
				"get only router-w's ICMP host unreachable; its ICE checks (Binding requests with USERNAME, PRIORITY, ICE-CONTROLLING) to 203.0.113.5:8443 are answered.",
			"`siplab ladder` (or `-html`): left of the SBC the browser's STUN — `browser → router-w → 203.0.113.21` Binding requests with no Binding success (resent, counted), " +
				"then its ICE checks `browser → router-w → sbc` answered — next to the call's core side (SBC → proxy → bob; the browser's SIP is inside TLS, WSS).",
		},
		Hints: []string{
			"A srflx (server-reflexive) candidate is the address a STUN server saw the browser's socket at: the NAT's mapping. " +
				"A TURN server's Allocate answer carries it too (XOR-MAPPED-ADDRESS): with a working TURN server alone the browser has a srflx candidate.",
			"The page gets its STUN/TURN URLs from the SBC: `siplab exec sbc get`. The lab's STUN/TURN is 203.0.113.20:3478.",
			"`siplab set sbc webrtc_ice_servers stun:203.0.113.20:3478,turn:203.0.113.20:3478` — the next page load gets it.",
		},
		Fix: []Step{
			RunExpect("set sbc webrtc_ice_servers "+labICE, "the page's STUN is the lab's again"),
			RunExpect("webphone call dave bob", "answered at once; candidates host, srflx 203.0.113.9:p, relay; selected srflx 203.0.113.9:p <-> host 203.0.113.5:8443"),
		},
		Symptom: "the browser has a srflx candidate (its public address, from a STUN server): none",
		Pass:    "the srflx candidate STUN reported",
		Check:   checkICESrflx,
	})
	register(&Exercise{
		ID: "08-ice-symmetric", Module: module08, Title: "ICE through symmetric NAT: the peer-reflexive pair",
		Task: "router-w became a symmetric NAT: a new public port for every destination. dave's browser calls still work. " +
			"Find out which of the browser's addresses the SBC's gateway uses — it is not the srflx candidate STUN reported — and answer with its candidate type and IP " +
			"(`siplab exercise check -answer \"<type> <ip>\"`). Why does the call work without TURN?",
		Setup: steps(bobBehindSBC, []Step{
			RunExpect("set router-w preset symmetric", "router-w maps the browser's socket anew for every destination"),
		}),
		Observe: []string{
			"`siplab webphone call dave bob -hold 20s`: the browser's srflx 203.0.113.9:a (what the lab STUN saw) and the selected pair's local side.",
			"`siplab exec sbc status` during the call: the gateway's `pair host 203.0.113.5:8443 <-> ... 203.0.113.9:b`.",
			"`siplab exec router-w status` during the call: the browser's one socket 192.168.9.10:x mapped twice — to 203.0.113.20:3478 and to 203.0.113.5:8443, different outside ports.",
			"`siplab ladder` (or `tshark -r captures/router-w.pcapng -Y stun`): on router-w/lan one source port, on router-w/wan two — the Binding request to the STUN server leaves as 203.0.113.9:a " +
				"(`[NAT 192.168.9.10:x ⇒ 203.0.113.9:a]`), the ICE check to the gateway as 203.0.113.9:b; the gateway's Binding success answers b.",
		},
		Hints: []string{
			"STUN reports the mapping towards the STUN server only; a symmetric NAT gives the check towards the SBC another port.",
			"An ICE agent that receives a check from an address no candidate names learns it as a peer-reflexive (prflx) candidate (RFC 8445 §7.3.1.3).",
			"The gateway is ICE-lite on a public address: it never sends checks of its own, it answers the browser's wherever they come from — so only one side is behind NAT and no relay is needed.",
		},
		Fix: []Step{
			RunExpect("webphone call dave bob", "selected pair: the browser's side is not its srflx address; the gateway names it prflx 203.0.113.9:b"),
		},
		Symptom: "no answer",
		Pass:    "the gateway sees the browser as prflx",
		Check:   checkICESymmetric,
		Answer:  answerICESymmetric,
	})
	register(&Exercise{
		ID: "08-ice-turn-off", Module: module08, Title: "Relay-only behind symmetric NAT: no TURN, no audio",
		Task: "The browser site is locked down: browsers may use nothing but TURN (ICE policy relay, `?policy=relay`), and router-w is a symmetric NAT. " +
			"After a \"STUN is enough\" change to the SBC's settings, dave's calls are answered but nobody hears anything. Make audio flow both ways — without relaxing the policy.",
		Setup: steps(bobBehindSBC, []Step{
			Run("set router-w preset symmetric"),
			RunExpect("set sbc webrtc_ice_servers "+labSTUN, "the page gets the lab STUN only: no TURN server"),
		}),
		Observe: []string{
			"`siplab webphone call dave bob -policy relay`: answered in SIP, no candidate at all, no selected pair, no audio (exit 1).",
			"`siplab doctor` while the call is up: *ICE failed: no usable pair … the browser offered no candidate at all*.",
			"`siplab exec sbc status`: the gateway's call stays `ice new`; `siplab exec stun status`: no allocation for dave.",
			"`siplab ladder`: the call's core side only — no ICE check reached the gateway, so no STUN is the call's (the ladder ties the browser's STUN to a call by its checks). After the fix, left of the SBC: " +
				"Allocate (401, then success with a relayed address), CreatePermission/ChannelBind for 203.0.113.5:8443, the checks relayed stun → sbc, the media counted as ChannelData.",
		},
		Hints: []string{
			"With policy relay the browser offers only relay candidates: addresses a TURN server allocated for it.",
			"Which TURN server does the page get? `siplab exec sbc get`: webrtc_ice_servers.",
			"`siplab set sbc webrtc_ice_servers stun:203.0.113.20:3478,turn:203.0.113.20:3478` (TURN with dave's own SIP password).",
		},
		Fix: []Step{
			RunExpect("set sbc webrtc_ice_servers "+labICE, "the page gets the lab TURN again"),
			RunExpect("webphone call dave bob -policy relay", "candidate relay 203.0.113.20:r; selected relay <-> host 203.0.113.5:8443; audio both ways"),
		},
		Symptom: "ICE failed: no usable pair",
		Pass:    "the selected pair uses the relay candidate",
		Check:   checkICETurn,
	})
}
