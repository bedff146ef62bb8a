// Package siptext reads the SIP header values the trace readers (doctor,
// explain) look at as text, as they stand in a capture: the top Via, the
// host of a sip: URI, an address and whether it is private. It parses no
// message; a value it cannot read gives an empty or false answer.
package siptext

import (
	"net/netip"
	"strings"
)

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
