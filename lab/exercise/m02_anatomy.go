package exercise

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// inviteAt finds the INVITE with callID captured at iface.
func inviteAt(tr *capture.Trace, iface, callID string) *capture.Packet {
	for i := range tr.SIP {
		pk := &tr.SIP[i]
		if pk.Iface == iface && bytes.HasPrefix(pk.Payload, []byte("INVITE ")) && pk.Header("Call-ID") == callID {
			return pk
		}
	}
	return nil
}

// anatomyINVITE finds alice's last call to bob and its INVITE on both
// sides of router-a.
func anatomyINVITE(ctx context.Context, p *Probe) (lan, wan *capture.Packet, callID string, err error) {
	c, err := p.lastOutgoing(ctx, "alice", "bob")
	if err != nil || c == nil {
		return nil, nil, "", fmt.Errorf("%s (%v)", noCall("alice", "bob"), err)
	}
	// The router writes its capture as packets pass; give it a moment.
	for deadline := time.Now().Add(3 * time.Second); ; {
		tr, err := readNode(p.Lab.CaptureDir(), "router-a")
		if err != nil {
			return nil, nil, c.CallID, err
		}
		lan, wan = inviteAt(tr, "router-a/lan", c.CallID), inviteAt(tr, "router-a/wan", c.CallID)
		if (lan != nil && wan != nil) || time.Now().After(deadline) {
			return lan, wan, c.CallID, nil
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// anatomyAnswer is what the intern reads off the capture: the INVITE's
// Call-ID and the public address:port router-a sent it from (where the
// proxy's received=/rport= point).
func anatomyAnswer(ctx context.Context, p *Probe) (string, error) {
	_, wan, callID, err := anatomyINVITE(ctx, p)
	if err != nil {
		return "", err
	}
	if wan == nil {
		return "", fmt.Errorf("INVITE %s not captured on router-a/wan", callID)
	}
	return callID + " " + wan.Src.String(), nil
}

// checkAnatomy passes when the intern's answer names the INVITE's Call-ID
// and its public source, read from the live capture; only then does it
// print both sides (before, it would give the answer away).
func checkAnatomy(ctx context.Context, p *Probe) Result {
	r := newResult()
	lan, wan, callID, err := anatomyINVITE(ctx, p)
	if !r.noError(err) {
		return r
	}
	if !r.require(lan != nil && wan != nil, "alice's last INVITE to bob captured on router-a/lan and router-a/wan") {
		return r
	}
	r.add("     captured at %s on both sides of router-a", wan.Time.Format("15:04:05.000"))
	fields := strings.Fields(p.Answer)
	if len(fields) == 0 {
		r.require(false, "no answer yet: siplab exercise check -answer \"<Call-ID> <ip:port>\" — the INVITE's Call-ID and the public address:port router-a sent it from")
		return r
	}
	hasCallID, hasSrc := false, false
	for _, f := range fields {
		hasCallID = hasCallID || f == callID
		hasSrc = hasSrc || f == wan.Src.String()
	}
	r.require(hasCallID, "your Call-ID matches the INVITE's: %v", hasCallID)
	r.require(hasSrc, "your public address:port matches where router-a sent the INVITE from: %v", hasSrc)
	if !r.Pass {
		return r
	}
	for _, side := range []struct {
		name string
		pk   *capture.Packet
	}{{"router-a/lan (as alice sent it)", lan}, {"router-a/wan (as the proxy receives it)", wan}} {
		pk := side.pk
		r.add("     %s: IP %s → %s", side.name, pk.Src, pk.Dst)
		for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq", "Contact"} {
			r.add("       %s: %s", h, pk.Header(h))
		}
	}
	same := bytes.Equal(lan.Payload, wan.Payload)
	r.add("     the SIP text is byte for byte the same on both sides: %v — the router changed only the IP/UDP source (%s → %s)", same, lan.Src, wan.Src)
	return r
}

func init() {
	register(&Exercise{
		ID: "02-anatomy", Module: "02 Message anatomy", Title: "One INVITE on both sides of the NAT",
		Task: "Call bob from alice, then read her INVITE as she sent it (captured on router-a's LAN side) and as the platform received it " +
			"(router-a's WAN side): Request-URI, Via, From, To, Call-ID, CSeq, Contact. Which addresses does the router change, and which headers still name 192.168.1.50? " +
			"Answer with what only the capture knows: `siplab exercise check -answer \"<Call-ID> <ip:port>\"` — the INVITE's Call-ID and the public address:port " +
			"router-a sent it from (where the proxy's received= and rport= point). A right answer prints both sides.",
		Observe: []string{
			"`siplab message`: the last call's INVITE as sent and as received at every capture point, and what each hop changed.",
			"`siplab ladder`: the call across both capture points; `siplab explain` explains the INVITE line by line.",
			"`sngrep -I captures/router-a.pcapng` or Wireshark on interfaces `router-a/lan` and `router-a/wan`.",
			"`siplab exec registrar status`: the binding's Contact as written and its source as seen.",
		},
		Hints: []string{
			"NAT rewrites IP and UDP headers only; the SIP text is the phone's, unless an ALG meddles (module 08).",
			"The Via's `rport` and the proxy's `received=` show where the proxy will answer.",
		},
		Fix:     append(callUp("alice", "bob"), Run("hangup alice")),
		Answer:  anatomyAnswer,
		Symptom: noCall("alice", "bob"),
		Pass:    "your Call-ID matches the INVITE's: true",
		Check:   checkAnatomy,
	})
}
