package sbc

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// sdpInfo is what the SBC needs from an SDP: where its sender says it
// wants audio (the relay's SetRemote), nothing else.
type sdpInfo struct {
	Addr netip.AddrPort // c= address (media-level wins) and the audio m= port
}

// rewriteSDP points an SDP at the relay: the audio m= port becomes
// local's port, every c= and the o= address local's IP, the o= user name a
// neutral "-" (it often names the core element that wrote it). Other
// media lines are refused (port 0): the relay carries one audio stream.
// Lines that would steer media around the relay (a=rtcp with an address,
// ICE candidates) are dropped. It returns the rewritten body and the
// address the original announced.
//
// This is line-based on purpose: everything the SBC does not have to
// touch (codecs, directions, fmtp, ptime) reaches the other side byte for
// byte, and line endings are normalised to CRLF (RFC 4566 §5).
//
// keepOrigin leaves the o= line as written (topology_hiding off).
func rewriteSDP(body []byte, local netip.AddrPort, keepOrigin bool) ([]byte, sdpInfo, error) {
	var info sdpInfo
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, info, fmt.Errorf("%w: empty body", ErrBadSDP)
	}
	lines := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	var out []string
	var sessC, mediaC netip.Addr
	audioPort := -1
	inAudio, audioSeen := false, false
	ip := local.Addr().Unmap()
	family := "IP4"
	if ip.Is6() {
		family = "IP6"
	}
	for _, ln := range lines {
		ln = strings.TrimRight(ln, "\r ")
		if ln == "" {
			continue
		}
		if len(ln) < 2 || ln[1] != '=' {
			return nil, info, fmt.Errorf("%w: line %q", ErrBadSDP, ln)
		}
		switch ln[0] {
		case 'o':
			f := strings.Fields(ln[2:])
			if len(f) != 6 {
				return nil, info, fmt.Errorf("%w: o= line %q", ErrBadSDP, ln)
			}
			if !keepOrigin {
				ln = fmt.Sprintf("o=- %s %s IN %s %s", f[1], f[2], family, ip)
			}
		case 'c':
			f := strings.Fields(ln[2:])
			if len(f) != 3 {
				return nil, info, fmt.Errorf("%w: c= line %q", ErrBadSDP, ln)
			}
			a, err := netip.ParseAddr(strings.Split(f[2], "/")[0])
			if err != nil {
				return nil, info, fmt.Errorf("%w: c= address %q", ErrBadSDP, f[2])
			}
			switch {
			case inAudio:
				mediaC = a
			case !audioSeen:
				sessC = a
			}
			ln = fmt.Sprintf("c=IN %s %s", family, ip)
		case 'm':
			f := strings.Fields(ln[2:])
			if len(f) < 4 {
				return nil, info, fmt.Errorf("%w: m= line %q", ErrBadSDP, ln)
			}
			port, err := strconv.Atoi(strings.Split(f[1], "/")[0])
			if err != nil || port < 0 || port > 65535 {
				return nil, info, fmt.Errorf("%w: m= port %q", ErrBadSDP, f[1])
			}
			inAudio = f[0] == "audio" && !audioSeen
			if inAudio {
				audioSeen = true
				audioPort = port
				if port != 0 { // port 0 is a refused stream: keep it refused
					f[1] = strconv.Itoa(int(local.Port()))
				}
			} else {
				f[1] = "0"
			}
			ln = "m=" + strings.Join(f, " ")
		case 'a':
			if strings.HasPrefix(ln, "a=rtcp:") || strings.HasPrefix(ln, "a=candidate") ||
				strings.HasPrefix(ln, "a=ice-") || strings.HasPrefix(ln, "a=remote-candidates") {
				continue
			}
		}
		out = append(out, ln)
	}
	if !audioSeen {
		return nil, info, fmt.Errorf("%w: no audio m= line", ErrBadSDP)
	}
	c := mediaC
	if !c.IsValid() {
		c = sessC
	}
	if !c.IsValid() {
		return nil, info, fmt.Errorf("%w: no c= line for the audio stream", ErrBadSDP)
	}
	info.Addr = netip.AddrPortFrom(c.Unmap(), uint16(audioPort))
	return []byte(strings.Join(out, "\r\n") + "\r\n"), info, nil
}

// isSDP says whether a message body is SDP by its Content-Type.
func isSDP(contentType string) bool {
	ct, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	return strings.TrimSpace(ct) == "application/sdp"
}
