// Package siptext reads the SIP header values the trace readers (capture,
// doctor, explain, the exercises' checks, the e2e wire taps) look at as
// text, as they stand in a capture: a header's value, the top Via, the
// host of a sip: URI, an address and whether it is private. It parses no
// message; a value it cannot read gives an empty or false answer.
package siptext

import (
	"bytes"
	"net/netip"
	"strings"
)

// compact maps RFC 3261 §7.3.3 compact header names to full ones.
var compact = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
}

// Header returns the first value of a header in a SIP message's text
// (compact forms match their full names, case-insensitively), or "". The
// start line and the body are not headers.
func Header(msg []byte, name string) string {
	want := bytes.ToLower([]byte(name))
	if full, ok := compact[string(want)]; ok {
		want = []byte(full)
	}
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := bytes.Split(head, []byte("\r\n"))
	for _, line := range lines[min(1, len(lines)):] {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k = bytes.ToLower(bytes.TrimSpace(k))
		if full, ok := compact[string(k)]; ok {
			k = []byte(full)
		}
		if bytes.Equal(k, want) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// TopVia splits the top Via of a Via header value into its sent-by
// ("192.168.1.50:5060") and its parameters, keyed in lower case.
func TopVia(via string) (sentBy string, params map[string]string) {
	first, _, _ := strings.Cut(via, ",")
	parts := strings.Split(first, ";")
	if f := strings.Fields(parts[0]); len(f) == 2 {
		sentBy = f[1]
	}
	params = map[string]string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[strings.ToLower(k)] = v
	}
	return sentBy, params
}

// URIHost is the host[:port] of the first sip: URI in a header value or
// start line ("" without one).
func URIHost(v string) string {
	i := strings.Index(v, "sip:")
	if i < 0 {
		return ""
	}
	v = v[i+4:]
	if end := strings.IndexAny(v, ">;?, "); end >= 0 {
		v = v[:end]
	}
	if at := strings.LastIndexByte(v, '@'); at >= 0 {
		v = v[at+1:]
	}
	return v
}

// HostAddr parses the host of "192.168.1.50:5060", "[::1]:5060" or a bare
// address; ok is false for a name.
func HostAddr(hostport string) (a netip.Addr, ok bool) {
	hostport = strings.TrimSpace(hostport)
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr(), true
	}
	a, err := netip.ParseAddr(strings.Trim(hostport, "[]"))
	return a, err == nil
}

// Private reports whether a cannot be reached from the internet: RFC 1918
// and ULA, loopback, link-local.
func Private(a netip.Addr) bool { return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() }
