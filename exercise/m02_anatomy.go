package exercise

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/siplab/siplab/capture"
)

// header returns the first value of a SIP header (long or compact name).
func header(msg []byte, names ...string) string {
	for _, line := range strings.Split(string(msg), "\r\n") {
		if line == "" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(name), n) {
				return strings.TrimSpace(val)
			}
		}
	}
	return ""
}

// inviteAt finds the INVITE with callID captured at iface.
func inviteAt(tr *capture.Trace, iface, callID string) *capture.Packet {
	for i := range tr.SIP {
		pk := &tr.SIP[i]
		if pk.Iface == iface && bytes.HasPrefix(pk.Payload, []byte("INVITE ")) && header(pk.Payload, "Call-ID", "i") == callID {
			return pk
		}
	}
	return nil
}

func checkAnatomy(ctx context.Context, p *Probe) Result {
	r := newResult()
	c, err := p.lastOutgoing(ctx, "alice", "bob")
	if err != nil || c == nil {
		r.require(false, "no call from alice to bob since the exercise started (%v)", err)
		return r
	}
	file := filepath.Join(p.Lab.CaptureDir(), "router-a.pcapng")
	var lan, wan *capture.Packet
	// The router writes its capture as packets pass; give it a moment.
	for deadline := time.Now().Add(3 * time.Second); ; {
		tr, err := capture.ReadFile(file)
		if err != nil {
			r.require(false, "read %s: %v", file, err)
			return r
		}
		lan, wan = inviteAt(tr, "router-a/lan", c.CallID), inviteAt(tr, "router-a/wan", c.CallID)
		if (lan != nil && wan != nil) || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, side := range []struct {
		name string
		pk   *capture.Packet
	}{{"router-a/lan (as alice sent it)", lan}, {"router-a/wan (as the proxy receives it)", wan}} {
		if !r.require(side.pk != nil, "INVITE %s captured on %s", c.CallID, side.name) {
			continue
		}
		pk := side.pk
		r.add("       IP %s → %s", pk.Src, pk.Dst)
		for _, h := range [][]string{{"Via", "v"}, {"From", "f"}, {"To", "t"}, {"Call-ID", "i"}, {"CSeq"}, {"Contact", "m"}} {
			r.add("       %s: %s", h[0], header(pk.Payload, h...))
		}
	}
	if lan != nil && wan != nil {
		same := bytes.Equal(lan.Payload, wan.Payload)
		r.add("     the SIP text is byte for byte the same on both sides: %v — the router changed only the IP/UDP source (%s → %s)", same, lan.Src, wan.Src)
	}
	return r
}

func init() {
	register(&Exercise{
		ID: "02-anatomy", Module: "02 Message anatomy", Title: "One INVITE on both sides of the NAT",
		Task: "Call bob from alice, then read her INVITE as she sent it (captured on router-a's LAN side) and as the platform received it " +
			"(router-a's WAN side): Request-URI, Via, From, To, Call-ID, CSeq, Contact. Which addresses does the router change, and which headers still name 192.168.1.50? " +
			"The check finds the INVITE on both sides and prints both.",
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
		Fix: []Step{
			Run("call alice bob"), Run("exec alice wait call-state confirmed -timeout 10s"),
			Run("hangup alice"),
		},
		Symptom: "no call from alice to bob since the exercise started",
		Pass:    "captured on router-a/wan",
		Check:   checkAnatomy,
	})
}
