package exercise

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/uaclient"
)

// The broken-ALG faults of natrouter/sipalg, one exercise each (besides
// rewrite-call-id and stale-content-length in m08_nat.go). A fault that
// the lab's defaults hide gets the setup that makes it bite, as the
// fault's page in docs/alg says: contact-not-via needs a server that
// answers to the Via as written (a phone without rport, a proxy ignoring
// rport), drop-large a phone that sends big requests over UDP
// (tcp_switch off) and a message bigger than one packet.

// sdpLine is the value of the first SDP line starting with prefix ("o=").
func sdpLine(msg []byte, prefix string) string {
	_, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

// lastAddr is the address an o= or c= line ends with.
func lastAddr(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// checkSDPAsSent: the probe call works both ways, and the SDP that left
// the site (router-a/wan) names one address in o= and c=, not a LAN one.
func checkSDPAsSent(ctx context.Context, p *Probe) Result {
	r := newResult()
	res := p.TwoWayAudio(ctx, &r, "alice", "bob", CallOpts{})
	if res.Caller.Call == nil || res.Caller.Call.CallID == "" {
		return r
	}
	callID := res.Caller.Call.CallID
	var wan *capture.Packet
	for deadline := time.Now().Add(3 * time.Second); ; {
		tr, err := readNode(p.Lab.CaptureDir(), "router-a")
		if !r.noError(err) {
			return r
		}
		if wan = inviteAt(tr, "router-a/wan", callID); wan != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !r.require(wan != nil, "the probe call's INVITE %s captured on router-a/wan", callID) {
		return r
	}
	o, c := sdpLine(wan.Payload, "o="), sdpLine(wan.Payload, "c=")
	r.add("     the SDP as it left the site: o=%s | c=%s", o, c)
	oa, ca := lastAddr(o), lastAddr(c)
	r.require(oa == ca, "o= names %s, c= names %s: one session, one address: %v", oa, ca, oa == ca)
	r.require(!strings.HasPrefix(oa, "192.168.") && !strings.HasPrefix(ca, "192.168."),
		"no LAN address leaves the site in the SDP (o= %s, c= %s)", oa, ca)
	return r
}

// longText is the drop-large exercise's instant message, a log pasted
// into a chat: with the SIP headers more than one 1500-byte IP packet.
var longText = strings.Repeat("0123456789abcdef", 125) // 2000 bytes

// checkLongMessage sends alice → bob a short MESSAGE and a long one and
// passes when the long one shows on bob's phone.
func checkLongMessage(ctx context.Context, p *Probe) Result {
	r := newResult()
	dropped := func() (uint64, bool) {
		rt, err := p.Router(ctx, "router-a")
		if err != nil || rt.ALGDetail == nil || rt.ALGDetail.Queue == nil {
			return 0, false
		}
		return rt.ALGDetail.Queue.Dropped, true
	}
	before, algQueue := dropped()
	// send returns the answer, or why there was none.
	send := func(text string) (uaclient.MessageRecord, string) {
		var rec uaclient.MessageRecord
		out, err := p.Lab.Exec(ctx, "alice", "message", "-json", "-timeout", "6s", "bob", text)
		if err == nil {
			err = json.Unmarshal(out, &rec)
		}
		if err != nil {
			return rec, errText(err)
		}
		return rec, ""
	}
	short, err := send("short test")
	r.add("     a %d-byte MESSAGE alice → bob: %d %s%s", len("short test"), short.Code, short.Reason, errSuffix(err))
	long, err := send(longText)
	if err != "" || long.Code != 200 {
		answer := "no answer" + errSuffix(err)
		if long.Code != 0 {
			answer = fmt.Sprintf("%d %s", long.Code, long.Reason)
		}
		r.require(false, "alice's %d-byte MESSAGE to bob (more than one 1500-byte packet) got %s", len(longText), answer)
		if after, ok := dropped(); ok && algQueue {
			r.add("     router-a's SIP ALG dropped %d SIP message(s) meanwhile", after-before)
		}
		return r
	}
	r.require(true, "alice's %d-byte MESSAGE to bob answered %d %s", len(longText), long.Code, long.Reason)
	st, ok := p.requirePhone(ctx, &r, "bob")
	if !ok {
		return r
	}
	got := false
	for _, m := range st.Messages {
		if m.Direction == "in" && m.Text == longText && !m.Time.Before(p.Since) {
			got = true
		}
	}
	r.require(got, "bob's phone received alice's %d-byte message: %v", len(longText), got)
	return r
}

// algOn sets router-a's ALG and re-registers alice through it: the
// registrar then holds the Contact the ALG wrote.
func algOn(spec string) []Step {
	return []Step{Run("set router-a alg " + spec), Run("exec alice register")}
}

func init() {
	register(&Exercise{
		ID: "08-alg-first-only", Module: module08, Title: "Broken ALG: only the first address rewritten",
		Task: "alice's phone writes its LAN address everywhere, as phones do out of the box, and router-a's ALG is supposed to translate it. " +
			"Calls connect, nobody hears anything. Find which addresses the ALG translated and which it left, and make both sides hear each other.",
		Setup: steps([]Step{RunExpect("set alice sdp_addr local", "c=IN IP4 192.168.1.50: the ALG's job to translate")}, algOn("broken:first-only")),
		Observe: []string{
			"`siplab call alice bob`, `siplab exec alice status`, `siplab exec bob status`: 0 RTP packets received on both sides.",
			"`siplab message`: on router-a/wan the top Via names 203.0.113.2, the Contact and the SDP c=/o= still 192.168.1.50.",
			"`siplab doctor`: private address in the SDP.",
		},
		Hints: []string{
			"The ALG did a replace-once: only the first private address in the message changed.",
			"Without an ALG the phone must write an address that works from outside: its router's public address, or `stun`.",
		},
		Fix:     steps(algOff, []Step{RunExpect("set alice sdp_addr 203.0.113.2", "the phone writes the public address itself (or `stun`)")}),
		Symptom: "alice heard nothing",
		Pass:    "bob heard alice's",
		Check:   twoWay("alice", "bob"),
	})
	register(&Exercise{
		ID: "08-alg-sdp-c-only", Module: module08, Title: "Broken ALG: c= translated, o= leaked",
		Task: "alice's phone writes its LAN address in the SDP and router-a's ALG translates it — half of it. Audio works in the lab, " +
			"but the SDP that leaves the site names two different addresses for one session, and equipment that compares o= with c= " +
			"(SBCs, recorders, some phones on re-INVITE) misbehaves. Make the SDP that leaves the site name one public address.",
		Setup: steps([]Step{RunExpect("set alice sdp_addr local", "o= and c= say 192.168.1.50")}, algOn("broken:sdp-c-only")),
		Observe: []string{
			"`siplab message`: the INVITE's SDP on router-a/lan and router-a/wan — c= translated, o= not.",
			"`siplab explain`: what o= and c= each mean.",
		},
		Hints: []string{
			"The check does not listen for audio problems: it reads the SDP as it left the site.",
			"Who should write the public address: the router, or the phone that knows it (sdp_addr, STUN)?",
		},
		Fix:     steps(algOff, []Step{RunExpect("set alice sdp_addr 203.0.113.2", "o= and c= both 203.0.113.2, written by the phone")}),
		Symptom: "no LAN address leaves the site in the SDP (o= 192.168.1.50",
		Pass:    "o= names 203.0.113.2, c= names 203.0.113.2",
		Check:   checkSDPAsSent,
	})
	register(&Exercise{
		ID: "08-alg-wrong-port", Module: module08, Title: "Broken ALG: a port the NAT never mapped",
		Task: "The platform now trusts the Contact each phone registers (contact_fixup off, as many hosted PBXs do) and relies on router-a's ALG " +
			"to make alice's Contact public. alice registers and calls out, but calls to her never ring. Make bob's calls reach alice.",
		Setup: []Step{
			RunExpect("set proxy contact_fixup off", "requests go to the Contact as registered"),
			Run("set router-a alg broken:wrong-port"),
			RunExpect("exec alice register", "Contact rewritten to 203.0.113.2:<mapped port + 1>"),
		},
		Observe: []string{
			"`siplab exec registrar status`: alice's Contact port differs from the source port her REGISTER came from.",
			"`siplab call bob alice`: no ringing; `siplab exec router-a status`: the *unsolicited inbound* counter grows.",
			"`captures/router-a.pcapng` on router-a/wan: the REGISTER's Contact port is not its UDP source port.",
		},
		Hints: []string{
			"A NAT mapping is an (address, port) pair: one port off and nothing is listening.",
			"Turn the ALG off. Then alice must write a Contact that works from outside herself: her router keeps her port 5060.",
		},
		Fix: []Step{
			RunExpect("exec alice unregister", "with the ALG still on: removes the binding with the wrong port"),
			Run("set router-a alg off"),
			RunExpect("set alice contact_addr 203.0.113.2:5060", "alice writes her public address and the port her router maps"),
			RunExpect("exec alice register", "one binding, sip:alice@203.0.113.2:5060"),
		},
		Symptom: "bob's probe call to alice",
		Pass:    "alice heard bob's",
		Check:   twoWay("bob", "alice"),
	})
	register(&Exercise{
		ID: "08-alg-strip-rport", Module: module08, Title: "Broken ALG: rport stripped",
		Task: "router-a's ALG rebuilds alice's Via: it drops the ;rport parameter and writes a public port of its own. alice's REGISTERs go out, " +
			"nothing comes back, though the proxy honours rport. Make alice register and call again.",
		Setup: []Step{
			Run("set router-a alg broken:strip-rport+wrong-port"),
			Fails("exec alice register -timeout 6s", "context deadline exceeded: the answers went to the Via's port"),
		},
		Observe: []string{
			"`siplab message` or `captures/router-a.pcapng`: the Via has ;rport on router-a/lan and not on router-a/wan, and a port one above the UDP source port.",
			"`siplab ladder`: the proxy's 401 goes to 203.0.113.2:<Via port>; router-a counts it as unsolicited.",
			"`siplab doctor`: the ALG findings.",
		},
		Hints: []string{
			"Without rport a server answers to the port written in the Via (RFC 3261 §18.2.2); with rport, to the port the request came from (RFC 3581).",
			"Each fault alone is harmless here: rport hides the wrong port, and a right port needs no rport. Together they bite.",
			"Field rule: turn SIP ALG off.",
		},
		Fix: []Step{
			Run("set router-a alg off"),
			RunExpect("exec alice register", "registered: the Via as alice wrote it, with ;rport"),
		},
		Symptom: "alice's REGISTER got no final answer",
		Pass:    "bob heard alice's",
		Check:   checkVia,
	})
	register(&Exercise{
		ID: "08-alg-contact-not-via", Module: module08, Title: "Broken ALG: Contact translated, Via not",
		Task: "alice's phone does not ask for rport and the platform answers to the Via as written. router-a's SIP ALG is supposed to make " +
			"alice's messages public: it translates her Contact and SDP — but not her Via. Her REGISTERs go out and nothing comes back. " +
			"Make alice register and call again.",
		Setup: []Step{
			RunExpect("set alice rport off", "alice's Via: 192.168.1.50:5060, no ;rport"),
			RunExpect("set proxy rport ignore", "the platform answers to the Via sent-by"),
			Run("set router-a alg broken:contact-not-via"),
			Fails("exec alice register -timeout 6s", "context deadline exceeded: the answers went to 192.168.1.50:5060"),
		},
		Observe: []string{
			"`siplab message` or `captures/router-a.pcapng` on router-a/wan: a public Contact (203.0.113.2) next to a private Via (192.168.1.50) in the same REGISTER — no phone writes that pair.",
			"`siplab ladder`: the proxy's answers go to 192.168.1.50, the address in the Via, and never cross router-a.",
			"`siplab doctor`: the ALG findings and *no rport*.",
		},
		Hints: []string{
			"A correct ALG translates Via and Contact alike (`broken:none` would); this one left the Via, and the Via is where answers go.",
			"Turning the ALG off alone leaves the Via private too: someone must answer to where packets come from — the phone asking (rport), the platform, or the SBC.",
			"The SBC (203.0.113.5) answers to the source and latches signalling and media; it registers alice at the platform under its own, reachable address.",
			"The SBC is the edge for every phone: its core side offers media on 10.0.0.5, which only the platform reaches. " +
				"A phone registered past it (bob, straight at the proxy) sends its RTP there and it never arrives: alice would hear nothing.",
		},
		Fix: []Step{
			RunExpect("set alice proxy 203.0.113.5:5060", "alice registers through the SBC"),
			RunExpect("set bob proxy 203.0.113.5:5060", "bob too: both sides of the call get the SBC's public relay address"),
			// alice's un-REGISTER through the proxy on the move was lost like
			// her REGISTERs: a wildcard un-REGISTER through the SBC clears
			// the stale direct binding too.
			RunExpect("exec alice unregister", "Contact: * through the SBC: every binding of alice removed"),
			Run("exec bob unregister"),
			RunExpect("exec alice register", "one binding each, through the SBC"),
			Run("exec bob register"),
		},
		Symptom: "alice's REGISTER got no final answer",
		Pass:    "bob heard alice's",
		Check:   checkVia,
	})
	register(&Exercise{
		ID: "08-alg-drop-large", Module: module08, Title: "Broken ALG: big messages vanish",
		Task: "alice's phone sends every request over UDP whatever its size, as many desk phones do, and router-a runs a SIP ALG. " +
			"alice pastes a 2000-byte log into an instant message to bob: short messages arrive, the long one never does. " +
			"Find where it disappears and make long messages reach bob.",
		Setup: steps([]Step{RunExpect("set alice tcp_switch off", "a request over 1300 bytes still goes over UDP, in IP fragments")},
			algOn("broken:drop-large")),
		Observe: []string{
			"`siplab exec alice message bob hello`: 200 OK; `siplab exec alice message -timeout 6s bob \"$(seq -s ' ' 600)\"` (2291 bytes): no answer, then a timeout.",
			"`captures/router-a.pcapng`: on router-a/lan the long MESSAGE arrives in IP fragments, retransmitted; on router-a/wan nothing of it.",
			"`siplab exec router-a status`: the ALG's *dropped* counter grows with each retransmission.",
		},
		Hints: []string{
			"A UDP datagram bigger than the MTU (1500) travels in IP fragments; an ALG that inspects single packets cannot parse a fragment and drops it.",
			"RFC 3261 §18.1.1: a request over 1300 bytes goes over TCP, which this UDP ALG never touches (`tcp_switch`). Or turn the ALG off.",
		},
		Fix: []Step{
			RunExpect("set alice tcp_switch on", "requests over 1300 bytes go over TCP: the UDP ALG never sees them"),
		},
		Symptom: "(more than one 1500-byte packet) got no answer",
		Pass:    "bob's phone received alice's 2000-byte message: true",
		Check:   checkLongMessage,
	})
}
