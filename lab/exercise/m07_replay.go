package exercise

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// proxyEdge is the proxy's internet-side capture point: what an
// eavesdropper on the internet sees arrive at the platform.
const proxyEdge = "proxy/internet"

// readNode reads one node's capture files (rotated ones too), from the
// lab's last reset on.
func readNode(dir, node string) (*capture.Trace, error) {
	files, err := capture.Files(dir, node)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no capture of %s in %s", node, dir)
	}
	return capture.ReadFiles(files...)
}

func isRequest(pk *capture.Packet, method string) bool {
	return bytes.HasPrefix(pk.Payload, []byte(method+" "))
}

func authOf(pk *capture.Packet) string {
	if a := pk.Header("Authorization"); a != "" {
		return a
	}
	return pk.Header("Proxy-Authorization")
}

// LastAuthorized is the newest REGISTER of user with credentials that
// reached the proxy from the internet, not from the attacker: what
// `siplab attack <node> replay` re-sends.
func LastAuthorized(tr *capture.Trace, user string) *capture.Packet {
	for i := len(tr.SIP) - 1; i >= 0; i-- {
		pk := &tr.SIP[i]
		if pk.Iface == proxyEdge && isRequest(pk, "REGISTER") && authOf(pk) != "" &&
			pk.Src.Addr().String() != attackerIP && strings.Contains(pk.Header("From"), "sip:"+user+"@") {
			return pk
		}
	}
	return nil
}

// LastAuthorizedInLab reads the proxy's capture for LastAuthorized.
func LastAuthorizedInLab(lab Lab, user string) (*capture.Packet, error) {
	tr, err := readNode(lab.CaptureDir(), "proxy")
	if err != nil {
		return nil, err
	}
	pk := LastAuthorized(tr, user)
	if pk == nil {
		return nil, fmt.Errorf("no REGISTER of %s with an Authorization in the proxy's capture since the last reset (siplab exec %s register makes one)", user, user)
	}
	return pk, nil
}

func viaBranch(pk *capture.Packet) string {
	_, b, _ := strings.Cut(pk.Header("Via"), "branch=")
	b, _, _ = strings.Cut(b, ";")
	return strings.TrimSpace(b)
}

// checkReplay finds, in the proxy's capture, a REGISTER from the attacker
// carrying credentials alice sent earlier, and the answer it got: a
// refusal (401 stale=true, or 403) passes; a 200, or a binding of alice's
// now pointing at the attacker, fails.
func checkReplay(ctx context.Context, p *Probe) Result {
	r := newResult()
	var tr *capture.Trace
	var replay, answer, original *capture.Packet
	// The proxy writes its capture as packets pass: give the answer a moment.
	for deadline := time.Now().Add(3 * time.Second); ; {
		var err error
		if tr, err = readNode(p.Lab.CaptureDir(), "proxy"); err != nil {
			r.require(false, "%v", err)
			return r
		}
		replay, answer, original = findReplay(tr, p.Since)
		if (replay != nil && answer != nil) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if replay == nil {
		r.require(false, "no replayed Authorization seen at the proxy since the exercise started (a REGISTER from %s with credentials alice sent before)", attackerIP)
		return r
	}
	nonce := digestParam(authOf(replay), "nonce")
	r.add("     %s alice's REGISTER from %s carried Authorization nonce=%q nc=%s response=%s…",
		original.Time.Format("15:04:05.000"), original.Src, nonce, digestParam(authOf(original), "nc"), short(digestParam(authOf(original), "response")))
	r.add("     %s the same credentials from %s, Contact %s", replay.Time.Format("15:04:05.000"), replay.Src, replay.Header("Contact"))
	if !r.require(answer != nil, "the proxy answered the replay") {
		return r
	}
	status := answer.StartLine()
	refused := strings.HasPrefix(status, "SIP/2.0 401") || strings.HasPrefix(status, "SIP/2.0 407") || strings.HasPrefix(status, "SIP/2.0 403")
	chal := answer.Header("WWW-Authenticate") + answer.Header("Proxy-Authenticate")
	r.require(refused, "the replay was answered %q%s", status, staleNote(chal))
	bs, err := p.Bindings(ctx, "alice")
	if !r.noError(err) {
		return r
	}
	hijacked := 0
	for _, b := range bs {
		if b.Source.Addr().String() == attackerIP || strings.Contains(b.ContactURI, attackerIP) {
			hijacked++
		}
	}
	r.require(hijacked == 0, "alice's %d binding(s) at the registrar: %d point at the attacker", len(bs), hijacked)
	return r
}

// findReplay returns the first REGISTER since since whose credentials an
// earlier REGISTER from another transaction carried, the final answer sent
// back to it, and that earlier REGISTER.
func findReplay(tr *capture.Trace, since time.Time) (replay, answer, original *capture.Packet) {
	seen := map[string]*capture.Packet{} // credentials → first REGISTER with them
	for i := range tr.SIP {
		pk := &tr.SIP[i]
		if pk.Iface != proxyEdge || !isRequest(pk, "REGISTER") {
			continue
		}
		a := authOf(pk)
		if a == "" {
			continue
		}
		first, ok := seen[a]
		if !ok {
			seen[a] = pk
			continue
		}
		// A retransmission keeps its branch; a replay is a new transaction.
		if viaBranch(first) == viaBranch(pk) || pk.Time.Before(since) || pk.Src.Addr().String() != attackerIP {
			continue
		}
		replay, original = pk, first
		branch := viaBranch(pk)
		for j := i + 1; j < len(tr.SIP); j++ {
			res := &tr.SIP[j]
			if res.Iface == proxyEdge && bytes.HasPrefix(res.Payload, []byte("SIP/2.0 ")) && !bytes.HasPrefix(res.Payload, []byte("SIP/2.0 1")) &&
				viaBranch(res) == branch {
				return replay, res, original
			}
		}
		return replay, nil, original
	}
	return nil, nil, nil
}

// digestParam reads one parameter of a Digest credentials or challenge value.
func digestParam(h, name string) string {
	for _, part := range strings.Split(strings.TrimPrefix(strings.TrimSpace(h), "Digest"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

func staleNote(chal string) string {
	if strings.EqualFold(digestParam(chal, "stale"), "true") {
		return " with stale=true: the registrar knows that nonce and count were used"
	}
	return ""
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func init() {
	register(&Exercise{
		ID: "07-replay", Module: "07 Registration & digest auth", Title: "A captured Authorization, replayed",
		Task: "Digest never sends the password, but anyone on the path sees alice's Authorization header — and the digest does not cover her Contact. " +
			"Play the eavesdropper: replay alice's last Authorization from the internet (203.0.113.66) in a REGISTER whose Contact is the attacker's, " +
			"and show from the capture that the platform refused it and kept alice's binding.",
		Setup: []Step{RunExpect("exec alice register", "a fresh authorized REGISTER crosses the internet: what the eavesdropper copies")},
		Observe: []string{
			"`siplab message` or `sngrep -I captures/proxy.pcapng`: alice's REGISTER with `Authorization: Digest … nonce=… nc=00000001 cnonce=… response=…`.",
			"The replay's report: `401` and `challenged with stale=true` — the registrar tracks each nonce's count (nc) and refuses a count it has seen.",
			"`siplab exec registrar status`: alice's binding still comes from her router, not from 203.0.113.66.",
		},
		Hints: []string{
			"`siplab attack proxy replay` finds alice's last authorized REGISTER in captures/proxy.pcapng and re-sends its credentials from the attacker.",
			"stale=true is how a server says \"right password, used nonce\": an honest phone answers the new nonce silently, a replayer cannot (it has no password).",
			"Digest with qop=auth: the response hashes nonce, nc and cnonce. A server that forgot which nc it saw would accept the copy — and route alice's calls to the attacker.",
		},
		Fix: []Step{
			RunExpect("attack proxy replay", "401 answers: 1, challenged with stale=true: 1 (replay refused)"),
		},
		Symptom: "no replayed Authorization seen at the proxy",
		Pass:    "stale=true: the registrar knows",
		Check:   checkReplay,
	})
}

// AttackArgs completes a `siplab attack <node> replay [-user NAME]` with
// the captured request to replay (-message-b64): the user's newest
// authorized REGISTER in the proxy's capture (alice's by default). Other
// modes, and a replay given its message, pass unchanged.
func AttackArgs(lab Lab, args []string) ([]string, error) {
	if len(args) == 0 || args[0] != "replay" || slices.Contains(args, "-message-b64") {
		return args, nil
	}
	user := "alice"
	out := []string{args[0]}
	for i := 1; i < len(args); i++ {
		if args[i] == "-user" && i+1 < len(args) {
			user = args[i+1]
			i++
			continue
		}
		out = append(out, args[i])
	}
	pk, err := LastAuthorizedInLab(lab, user)
	if err != nil {
		return nil, err
	}
	return append(out, "-message-b64", base64.StdEncoding.EncodeToString(pk.Payload)), nil
}
