package natrouter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SIPProbeResult is the outcome of one SIP probe: an OPTIONS of a chosen
// size, to check whether a SIP server answers through the NAT and whether a
// message that does not fit one packet survives the router (the ALG's
// drop-large fault does not let it).
type SIPProbeResult struct {
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// Size is the SIP message size sent (UDP payload bytes).
	Size int `json:"size"`
	// Tries is how many times the request was sent (SIP retransmits over
	// UDP: at 0.5 s, 1 s, 2 s...).
	Tries int `json:"tries"`
	// Status is the answer's status line ("SIP/2.0 200 OK"), empty when
	// none came.
	Status string `json:"status,omitempty"`
	// Via is the top Via of the answer: received=/rport= say where the
	// server saw the probe from.
	Via string `json:"via,omitempty"`
}

// MaxSIPProbeSize bounds the probe: one UDP datagram.
const MaxSIPProbeSize = 65000

// ProbeSIP sends an OPTIONS to dst from conn, padded to size bytes, and
// waits up to wait for a response, retransmitting like a SIP client.
func ProbeSIP(ctx context.Context, conn *net.UDPConn, dst netip.AddrPort, size int, wait time.Duration) (SIPProbeResult, error) {
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	res := SIPProbeResult{Local: local, Remote: dst}
	if local.Addr().IsUnspecified() {
		// The Via needs an address; the one routing to dst is what a
		// phone would write.
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return res, fmt.Errorf("natrouter: probe route to %s: %w", dst, err)
		}
		la, _ := netip.ParseAddrPort(c.LocalAddr().String())
		c.Close()
		local = netip.AddrPortFrom(la.Addr(), local.Port())
	}
	msg, err := sipProbeMessage(local, dst, size)
	if err != nil {
		return res, err
	}
	res.Size = len(msg)
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	buf := make([]byte, 65535)
	interval := 500 * time.Millisecond
	for time.Now().Before(deadline) {
		if _, err := conn.WriteToUDPAddrPort(msg, dst); err != nil {
			return res, fmt.Errorf("natrouter: send probe: %w", err)
		}
		res.Tries++
		next := time.Now().Add(interval)
		if next.After(deadline) {
			next = deadline
		}
		interval *= 2
		for {
			_ = conn.SetReadDeadline(next)
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return res, fmt.Errorf("natrouter: probe read: %w", err)
			}
			if status, via, ok := sipProbeAnswer(buf[:n], msg); ok {
				res.Status, res.Via = status, via
				return res, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// sipProbeMessage builds an OPTIONS of exactly size bytes (or the smallest
// possible when size is smaller), padded with an X-Siplab-Pad header.
func sipProbeMessage(local, dst netip.AddrPort, size int) ([]byte, error) {
	if size < 0 || size > MaxSIPProbeSize {
		return nil, fmt.Errorf("natrouter: probe size %d outside [0, %d]", size, MaxSIPProbeSize)
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	id := hex.EncodeToString(nonce[:])
	head := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-siplab-%s;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:probe@%s>;tag=%s\r\n"+
		"To: <sip:%s>\r\n"+
		"Call-ID: %s@%s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Contact: <sip:probe@%s>\r\n"+
		"Accept: application/sdp\r\n",
		dst, local, id, local.Addr(), id, dst, id, local.Addr(), local)
	tail := "Content-Length: 0\r\n\r\n"
	const padName = "X-Siplab-Pad: "
	if pad := size - len(head) - len(tail) - len(padName) - 2; pad > 0 {
		head += padName + strings.Repeat("x", pad) + "\r\n"
	}
	return []byte(head + tail), nil
}

// sipProbeAnswer recognises the response to our request by its branch.
func sipProbeAnswer(b, req []byte) (status, via string, ok bool) {
	s := string(b)
	if !strings.HasPrefix(s, "SIP/2.0 ") {
		return "", "", false
	}
	branch := sipHeader(req, "via")
	if i := strings.Index(branch, "branch="); i >= 0 {
		branch = branch[i+len("branch="):]
		if j := strings.IndexAny(branch, ";, "); j >= 0 {
			branch = branch[:j]
		}
	}
	if !strings.Contains(s, branch) {
		return "", "", false
	}
	status, _, _ = strings.Cut(s, "\r\n")
	return status, sipHeader(b, "via", "v"), true
}

// StatusCode returns the response code, 0 when there was no answer.
func (r SIPProbeResult) StatusCode() int {
	f := strings.Fields(r.Status)
	if len(f) < 2 {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}
