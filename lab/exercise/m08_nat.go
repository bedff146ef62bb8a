package exercise

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const module08 = "08 NAT traversal"

// checkVia re-registers alice (the REGISTER's response must find its way
// back through the NAT) and places a call.
func checkVia(ctx context.Context, p *Probe) Result {
	r := newResult()
	start := time.Now()
	_, err := p.Lab.Exec(ctx, "alice", "register", "-timeout", "6s")
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		r.require(false, "alice's REGISTER got no final answer (gave up after %s: %s)", took, errText(err))
		r.add("     (the response went to the address the Via names, not to where the request came from)")
		return r
	}
	r.require(true, "alice's REGISTER answered in %s", took)
	p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{})
	return r
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 120 {
		return strings.TrimSpace(s[i+2:])
	}
	return s
}

// checkKeepalive lets bob's line idle for longer than router-b's pinhole
// (capped: a pinhole longer than the cap is not the problem), then calls him.
func checkKeepalive(ctx context.Context, p *Probe) Result {
	r := newResult()
	rt, err := p.Router(ctx, "router-b")
	if !r.noError(err) {
		return r
	}
	idle := min(rt.Pinhole(), 30*time.Second) + 3*time.Second
	r.add("     router-b forgets an idle mapping after %s: the check lets bob's line idle %s first", rt.Pinhole(), idle)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		r.require(false, "%v", ctx.Err())
		return r
	}
	if rt, err = p.Router(ctx, "router-b"); err == nil {
		for _, m := range rt.Mappings {
			if strings.HasPrefix(m.Inside.String(), "192.168.2.50:5060") {
				r.add("     router-b still maps bob's SIP socket %s → %s (remote %s, %d packets out)", m.Inside, m.Outside, m.Remote, m.PacketsOut)
			}
		}
	}
	p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{})
	return r
}

// checkOneBinding: the registrar stores alice's Contact as she wrote it,
// once, and calls to her work.
func checkOneBinding(ctx context.Context, p *Probe) Result {
	r := newResult()
	st, ok := p.requirePhone(ctx, &r, "alice")
	if !ok {
		return r
	}
	bs, err := p.Bindings(ctx, "alice")
	if !r.noError(err) {
		return r
	}
	wrote := st.Registration.Contact
	var uris []string
	asWritten := 0
	for _, b := range bs {
		uris = append(uris, fmt.Sprintf("%s (from %s)", b.ContactURI, b.Source))
		if sameURI(b.ContactURI, wrote) {
			asWritten++
		}
	}
	r.require(len(bs) == 1, "the registrar holds %d binding(s) for alice: %s", len(bs), strings.Join(uris, ", "))
	r.require(asWritten == len(bs) && asWritten > 0, "alice wrote Contact %s; the registrar stored it unchanged: %v", wrote, asWritten == len(bs) && asWritten > 0)
	p.TwoWayAudio(ctx, &r, "bob", "alice", CallOpts{})
	return r
}

func sameURI(a, b string) bool {
	trim := func(s string) string {
		s = strings.Trim(s, "<>")
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		return s
	}
	return trim(a) == trim(b)
}

// checkByeArrives: a call connects and the callee's BYE ends the caller's
// side too.
func checkByeArrives(ctx context.Context, p *Probe) Result {
	r := newResult()
	res := p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{CalleeHangsUp: true})
	if res.Connected {
		r.require(res.Ended, "bob hung up: alice's call ended with his BYE: %v", res.Ended)
	}
	return r
}

// algOff turns router-a's ALG off without leaving a ghost: the
// un-REGISTER goes out while the ALG still rewrites its Contact the way it
// rewrote the REGISTER's, so it removes the binding the ALG wrote.
var algOff = []Step{
	RunExpect("exec alice unregister", "with the ALG still on: removes the binding whose Contact the ALG rewrote"),
	Run("set router-a alg off"),
	RunExpect("exec alice register", "one binding, Contact as alice wrote it"),
}

func steps(groups ...[]Step) []Step {
	var out []Step
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func init() {
	register(&Exercise{
		ID: "08-via", Module: module08, Title: "Lie 1: the Via — responses that never come back",
		Task: "alice's phone stopped asking for rport and the platform answers to the Via as written. " +
			"Her REGISTERs and INVITEs go out, nothing comes back. Make her register and call again.",
		Setup: []Step{
			Run("set alice rport off"),
			Run("set proxy rport ignore"),
			Fails("exec alice register -timeout 6s", "context deadline exceeded: the 200 OK went to 192.168.1.50:5060"),
		},
		Observe: []string{
			"`siplab exec alice register`: no answer, retransmissions, then a timeout.",
			"`siplab ladder`: the proxy's responses go to 192.168.1.50 — the address in the Via — and never cross router-a.",
			"`siplab doctor`: *no rport* and the state rule about the proxy ignoring rport.",
		},
		Hints: []string{
			"rport (RFC 3581) asks the server to answer to the source port the request came from — but only a server that honours it helps.",
			"`siplab set alice rport on` alone is not enough while the proxy ignores rport: which side must change?",
			"A server that always answers to the source (`set proxy rport force`) fixes phones that never ask.",
		},
		Fix: []Step{
			RunExpect("set proxy rport honour", "the proxy answers to the source address, and to the source port when the Via has rport"),
			Run("set alice rport on"),
			RunExpect("exec alice register", "registered"),
		},
		Symptom: "alice's REGISTER got no final answer",
		Pass:    "bob heard alice's",
		Check:   checkVia,
	})
	register(&Exercise{
		ID: "08-contact", Module: module08, Title: "Lie 2: the Contact — calls that never ring",
		Task: "The platform now routes calls to the Contact each phone wrote. Calls from alice to bob stopped ringing. " +
			"Find where the INVITE goes, and make bob reachable again.",
		Setup: []Step{Run("set proxy contact_fixup off")},
		Observe: []string{
			"`siplab exec registrar status`: bob's binding — the Contact as written (192.168.2.50) and where the REGISTER came from (203.0.113.3:…).",
			"`siplab call alice bob`: no ringing, then a timeout; `siplab ladder`: the proxy's INVITE to 192.168.2.50.",
		},
		Hints: []string{
			"A private address in a Contact is a lie the platform must not believe: the REGISTER's source address is the truth.",
			"The proxy can route by the binding's source (`contact_fixup`), or the SBC can sit in front (module 08 finale).",
			"`contact_fixup auto` (the lab's default) routes to the source only when a NAT test fires (Kamailio's nat_uac_test ideas: private Contact, Via ≠ source); `on` always does — and then misses a UA that registered its Contact from another socket, which RFC 3261 §10.2 allows.",
		},
		Fix: []Step{
			RunExpect("set proxy contact_fixup auto", "requests to bob go where his REGISTER came from: the NAT tests via-received, via-private and contact-private fire for him"),
			RunExpect("exec proxy status", "the `nat` lines name the tests that fired for each binding and where the last request went"),
		},
		Symptom: "alice's probe call to bob",
		Pass:    "alice heard bob's",
		Check:   twoWay("alice", "bob"),
	})
	register(&Exercise{
		ID: "08-sdp", Module: module08, Title: "Lie 3: the SDP — one-way audio",
		Task: "alice's phone writes its LAN address in the SDP, as phones do out of the box (the lab's phones are configured with their public address). " +
			"Call bob and find who hears nothing; fix it so both hear each other.",
		Setup: []Step{RunExpect("set alice sdp_addr local", "alice's next SDP says c=IN IP4 192.168.1.50")},
		Observe: []string{
			"`siplab call alice bob`, `siplab exec alice status`: 0 packets received — **alice** hears nothing: bob sends to 192.168.1.50, which the internet cannot reach.",
			"`siplab exec bob status`: bob hears nothing either — router-b (port-restricted) lets in only what comes from where bob sent, and bob sent to 192.168.1.50. " +
				"With a full-cone router-b, bob would hear alice: one-way audio.",
			"`siplab doctor`: private address in the SDP.",
		},
		Hints: []string{
			"Write the address the world sees: the router's public address, or what STUN finds (`sdp_addr stun`).",
			"Or let the far end latch: the SBC's relay sends to where alice's packets come from (module 08 finale).",
		},
		Fix:     []Step{RunExpect("set alice sdp_addr 203.0.113.2", "alice writes her router's public address; symmetric RTP makes the router's mapping match it")},
		Symptom: "alice heard nothing",
		Pass:    "alice heard bob's",
		Check:   twoWay("alice", "bob"),
	})
	register(&Exercise{
		ID: "08-keepalive", Module: module08, Title: "Keep-alives vs the pinhole",
		Task: "router-b now forgets an idle mapping after 10 s and bob's phone stopped sending keep-alives. " +
			"Calls to bob die a few seconds after he registered (sometimes carol rings instead). Keep bob reachable without touching the router.",
		Setup: []Step{
			Run("set router-b pinhole 10s"),
			Run("set bob keepalive off"),
			RunExpect("exec bob register", "a fresh mapping, soon forgotten"),
			Run("exec carol register"),
		},
		Observe: []string{
			"Wait 15 s, `siplab call alice bob`: bob never rings — or **carol** rings: her next packet took the public port 203.0.113.3:5060 that bob's expired mapping freed.",
			"`siplab exec router-b status`: bob's mapping is gone; the INVITE is counted as unsolicited.",
			"`siplab doctor`: the state rule *keep-alive interval longer than the pinhole*.",
		},
		Hints: []string{
			"A NAT mapping lives as long as packets flow: something must cross it more often than the pinhole.",
			"`siplab set bob keepalive crlf` and `keepalive_interval 5s`, then a fresh `register` (the old mapping is gone).",
		},
		Fix: []Step{
			Run("set bob keepalive crlf"),
			RunExpect("set bob keepalive_interval 5s", "bob sends a CRLF every 5 s: the mapping never idles 10 s"),
			Run("exec bob register"),
		},
		Symptom: "alice's probe call to bob",
		Pass:    "bob heard alice's",
		Check:   checkKeepalive,
	})
	register(&Exercise{
		ID: "08-symmetric-turn", Module: module08, Title: "Symmetric NAT: STUN fails, TURN works",
		Task: "router-a became a symmetric NAT and alice asks the STUN server for her public address. " +
			"The STUN answer is a real mapping — but only towards the STUN server. Make alice hear bob again without touching the router.",
		Setup: []Step{
			Run("set router-a preset symmetric"),
			Run("exec alice register"),
			RunExpect("set alice sdp_addr stun", "alice's SDP carries the mapping the STUN server saw"),
		},
		Observe: []string{
			"`siplab call alice bob`, `siplab exec alice status`: the `stun:` line (mapped 203.0.113.2:…) and 0 packets received.",
			"`siplab exec router-a status`: alice's RTP socket has one outside port towards the STUN server and another towards bob.",
			"`siplab exec stun status`: the Binding request and what it was told.",
		},
		Hints: []string{
			"STUN works for most NATs; it fails on symmetric NAT: the port is different for every destination.",
			"A relay reached through the one mapping alice already has does not care: `siplab set alice media_relay turn`.",
		},
		Fix:     []Step{RunExpect("set alice media_relay turn", "alice allocates a relay on 203.0.113.20 and writes the relayed address in her SDP")},
		Symptom: "alice heard nothing",
		Pass:    "alice heard bob's",
		Check:   twoWay("alice", "bob"),
	})
	register(&Exercise{
		ID: "08-alg-kernel", Module: module08, Title: "Kernel SIP ALG: the helpful router and the ghost binding",
		Task: "router-a's SIP ALG (Linux nf_nat_sip) was switched on and alice re-registered. Calls still work — but the registrar now holds " +
			"a second binding for alice that nobody wrote, and the next call to her forks. Leave the registrar with alice's one binding, as she wrote it.",
		Setup: []Step{
			Run("set router-a alg kernel"),
			RunExpect("exec alice register", "the ALG rewrites her Contact to 203.0.113.2:5060: a second binding"),
		},
		Observe: []string{
			"`siplab exec registrar status`: two bindings for alice — sip:alice@192.168.1.50:5060 and sip:alice@203.0.113.2:5060.",
			"`captures/router-a.pcapng`: the same REGISTER on `router-a/lan` and `router-a/wan` — Via, Contact (and SDP o=/c=) rewritten, Call-ID not.",
			"`siplab call bob alice`: the proxy forks to both bindings.",
		},
		Hints: []string{
			"Field rule: turn SIP ALG off on customer routers.",
			"`siplab exec alice unregister` removes only the Contact it sends — the ALG rewrites that one too while it is on. Order matters.",
		},
		Fix: []Step{
			RunExpect("exec alice unregister", "with the ALG still on: the rewritten binding is removed"),
			Run("set router-a alg off"),
			RunExpect("exec alice register", "one binding, Contact as alice wrote it"),
		},
		Symptom: "the registrar holds 2 binding(s) for alice",
		Pass:    "the registrar stored it unchanged: true",
		Check:   checkOneBinding,
	})
	register(&Exercise{
		ID: "08-alg-rewrite-call-id", Module: module08, Title: "Broken ALG: the Call-ID rewritten",
		Task: "router-a runs a consumer-router ALG that replaces alice's private address wherever it appears — the Call-ID too. " +
			"Calls connect, but when bob hangs up alice stays in the call. Make bob's BYE end alice's call.",
		Setup: []Step{
			Run("set router-a alg broken:rewrite-call-id"),
			Run("exec alice register"),
		},
		Observe: []string{
			"`siplab call alice bob`, `siplab hangup bob`, `siplab exec alice status`: alice's call is still `confirmed`.",
			"`siplab ladder`: the Call-ID on router-a/lan ends in @192.168.1.50, on router-a/wan in @203.0.113.2; alice answers bob's BYE with 481.",
		},
		Hints:   []string{"The Call-ID is an identifier, not an address: nothing may rewrite it. Which box rewrote it?"},
		Fix:     algOff,
		Symptom: "alice's call ended with his BYE: false",
		Pass:    "alice's call ended with his BYE: true",
		Check:   checkByeArrives,
	})
	register(&Exercise{
		ID: "08-alg-stale-content-length", Module: module08, Title: "Broken ALG: Content-Length not updated",
		Task: "alice's phone writes its LAN address in the SDP, as phones do out of the box, and router-a's ALG rewrites it to the public one — " +
			"a shorter string — without fixing Content-Length. alice registers, but her calls never ring. Make her calls work.",
		Setup: []Step{
			RunExpect("set alice sdp_addr local", "192.168.1.50 in o= and c=: what the ALG rewrites"),
			Run("set router-a alg broken:stale-content-length"),
			Run("exec alice register"),
		},
		Observe: []string{
			"`siplab call alice bob`: no 100 Trying, no ringing: the proxy answers at once 400 Content-Length Larger Than Message.",
			"`captures/router-a.pcapng` on router-a/wan: the SDP is 2 bytes shorter than the Content-Length promises; RFC 3261 §18.3 makes that request an error (400).",
		},
		Hints: []string{
			"Registration works (REGISTER has no body): the fault is in what the router does to bodies.",
			"Without the ALG alice's SDP must carry an address that works from outside.",
		},
		Fix: steps(algOff,
			[]Step{RunExpect("set alice sdp_addr 203.0.113.2", "the phone writes the public address itself (or `stun`)")}),
		Symptom: "alice's probe call to bob failed: 400 Content-Length Larger Than Message",
		Pass:    "bob heard alice's",
		Check:   twoWay("alice", "bob"),
	})
	register(&Exercise{
		ID: "08-sbc", Module: "08 NAT traversal (finale)", Title: "The SBC fixes all three lies at the edge",
		Task: "Every phone-side NAT fix is off on alice and bob, and the proxy answers to the Via as written. Calls fail every way module 08 shows. " +
			"Fix it the way the training page ends — at the platform's edge, without touching the phones' NAT settings.",
		Setup: []Step{
			Run("set alice rport off"), Run("set bob rport off"),
			Run("set alice sdp_addr local"), Run("set bob sdp_addr local"),
			Run("set alice keepalive off"), Run("set bob keepalive off"),
			RunExpect("set proxy rport ignore", "nothing on the platform trusts the wire"),
		},
		Observe: []string{
			"`siplab call alice bob`: the proxy's answers go to 192.168.1.50: alice retransmits, then gives up.",
			"`siplab doctor`: private Via without rport, private SDP.",
		},
		Hints: []string{
			"The SBC (203.0.113.5) ignores the addresses written in SIP and SDP and latches signalling and media to where packets come from.",
			"`siplab set alice proxy 203.0.113.5:5060` re-registers alice through the SBC.",
		},
		Fix: []Step{
			RunExpect("set alice proxy 203.0.113.5:5060", "alice re-registers through the SBC"),
			Run("set bob proxy 203.0.113.5:5060"),
			// The un-REGISTER each phone sent through the proxy on the move
			// was challenged, and the 401 went to its private Via: the old
			// direct binding stays and would fork calls past the SBC. A
			// wildcard un-REGISTER through the SBC clears every binding.
			RunExpect("exec alice unregister", "Contact: * through the SBC: every binding of alice removed, the stale direct one too"),
			Run("exec bob unregister"),
			Run("exec alice register"), Run("exec bob register"),
		},
		Symptom: "alice's probe call to bob",
		Pass:    "bob heard alice's",
		Check:   checkSBC,
	})
}

// checkSBC is the two-way probe call plus what the SBC's relay did with
// it, when the call went through the SBC: where each side latched.
func checkSBC(ctx context.Context, p *Probe) Result {
	r := newResult()
	res := p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{})
	if !res.Connected {
		return r
	}
	st, err := p.SBC(ctx)
	if err != nil || len(st.Calls) == 0 {
		return r
	}
	c := st.Calls[len(st.Calls)-1]
	if c.Started.Before(p.Since) {
		return r
	}
	for i, m := range c.Media {
		r.add("     SBC relay side %d (%s): SDP said %s, latched %s, sending to %s, %d in / %d out, dropped %d",
			i, c.Legs[i].Peer, m.SDPRemote, m.Latched, m.SendingTo, m.PacketsIn, m.PacketsOut, m.Dropped.Total)
	}
	return r
}
