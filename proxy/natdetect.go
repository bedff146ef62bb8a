package proxy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

// NAT tests of contact_fixup auto, named after the Kamailio nathelper
// nat_uac_test flag each one follows.
const (
	// NATContactPrivate (nat_uac_test 1): the Contact host is an RFC 1918
	// or RFC 6598 (100.64/10) address: nobody outside can reach it.
	NATContactPrivate = "contact-private"
	// NATViaReceived (2): the top Via host of the REGISTER is not the IP
	// address the packet came from.
	NATViaReceived = "via-received"
	// NATViaPrivate (4): the top Via host is RFC 1918 / RFC 6598.
	NATViaPrivate = "via-private"
	// NATViaPort (16): the top Via port (5060 when absent) is not the
	// packet's source port.
	NATViaPort = "via-port"
)

// Where the detection lives, and why: only the proxy sees a REGISTER as
// it arrived — its top Via next to the packet's source address. The
// registrar sees the proxy's Via and a source of 10.0.0.10, and stores
// just the Contact as written plus the seen source (Path received=). So
// the proxy runs the Via tests when it forwards the REGISTER and writes
// the result into its own Path entry (nat=via-received.via-private, or
// nat=no), next to received=, in the same way Kamailio keeps a NAT
// branch flag with a location record. The registrar stores that Path
// with the binding; when the proxy routes to the binding it reads the
// verdict back from its own entry and adds the Contact test, which needs
// nothing but the stored Contact. The live toggle then only chooses what
// to do with a verdict that was recorded once: auto, on and off all work
// on bindings registered before the change.
const natParam = "nat"

// privateNets are RFC 1918 and RFC 6598 (carrier-grade NAT) space.
var privateNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

func isPrivate(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range privateNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// viaNAT runs the Via tests on a request's top Via against its packet
// source. A host name in the Via is not the source IP (test 2 fires, as
// RFC 3261 §18.2.1 would add received=).
func viaNAT(via *sip.ViaHeader, src netip.AddrPort) []string {
	if via == nil || !src.IsValid() {
		return nil
	}
	var tests []string
	ip, err := netip.ParseAddr(strings.Trim(via.Host, "[]"))
	if err != nil || ip.Unmap() != src.Addr().Unmap() {
		tests = append(tests, NATViaReceived)
	}
	if err == nil && isPrivate(ip) {
		tests = append(tests, NATViaPrivate)
	}
	port := via.Port
	if port == 0 {
		port = sip.DefaultPort(via.Transport)
	}
	if port != int(src.Port()) {
		tests = append(tests, NATViaPort)
	}
	return tests
}

// contactNAT is test 1 on a Contact URI.
func contactNAT(u sip.Uri) []string {
	if ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]")); err == nil && isPrivate(ip) {
		return []string{NATContactPrivate}
	}
	return nil
}

// pathNAT is the value of our Path entry's nat parameter: the Via tests
// that fired, dot-separated, or "no".
func pathNAT(tests []string) string {
	if len(tests) == 0 {
		return "no"
	}
	return strings.Join(tests, ".")
}

// viaTestsFromPath reads the Via verdict back from our own Path entries;
// ok is false when none of them carries one (the binding was not
// registered through this proxy, or before it recorded verdicts).
func viaTestsFromPath(ours []sip.Uri) (tests []string, ok bool) {
	for _, u := range ours {
		v, has := u.UriParams.Get(natParam)
		if !has {
			continue
		}
		if v != "" && v != "no" {
			tests = strings.Split(v, ".")
		}
		return tests, true
	}
	return nil, false
}

// fixupDecision decides whether a binding is reached at its Source: on
// and off are unconditional; auto fixes up when a NAT test fired. tests
// lists them (for status and logs), note says what was known.
func fixupDecision(mode string, b location.Binding, contact sip.Uri, ours []sip.Uri) (fix bool, tests []string, note string) {
	switch mode {
	case FixupOn:
		return b.Source.IsValid(), nil, "contact_fixup on"
	case FixupOff:
		return false, nil, "contact_fixup off"
	}
	via, known := viaTestsFromPath(ours)
	tests = append(slices.Clone(via), contactNAT(contact)...)
	note = "auto"
	if !known {
		note = "auto, Via not seen by this proxy"
	}
	tr := strings.ToLower(b.Transport)
	if tr != "" && tr != sipnet.UDP && len(tests) == 0 {
		// A connection-oriented registration: the phone listens on the
		// connection it opened (RFC 5626 §5.3), and a new connection to
		// its Contact may never get through its NAT or firewall.
		tests = []string{"connection"}
	}
	return len(tests) > 0 && b.Source.IsValid(), tests, note
}

// NATCheck is one contact_fixup decision, as `proxy status` shows it.
type NATCheck struct {
	AOR     string `json:"aor,omitempty"`
	Contact string `json:"contact"`
	Source  string `json:"source"`
	// Tests are the NAT tests that fired (NATViaReceived, ...); empty
	// when none did.
	Tests []string `json:"tests"`
	// Mode is the contact_fixup setting the last request to the binding
	// was routed under; empty until one was.
	Mode string `json:"mode,omitempty"`
	// RoutedTo is where that request went: "source" (fixed up) or
	// "contact" (as written); empty until one was.
	RoutedTo string    `json:"routed_to,omitempty"`
	At       time.Time `json:"at"`
}

// natLog keeps the latest check per binding (AOR + Contact), bounded.
type natLog struct {
	mu      sync.Mutex
	entries map[string]NATCheck
}

const natLogMax = 64

func (l *natLog) record(c NATCheck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]NATCheck{}
	}
	key := c.AOR + "|" + contactKey(c.Contact)
	if _, ok := l.entries[key]; !ok && len(l.entries) >= natLogMax {
		oldest := ""
		for k, e := range l.entries {
			if oldest == "" || e.At.Before(l.entries[oldest].At) {
				oldest = k
			}
		}
		delete(l.entries, oldest)
	}
	if prev, ok := l.entries[key]; ok && c.RoutedTo == "" {
		// A re-REGISTER refreshes the tests; where the last request went
		// stays until the next one.
		c.Mode, c.RoutedTo = prev.Mode, prev.RoutedTo
	}
	l.entries[key] = c
}

// snapshot is the checks, newest first.
func (l *natLog) snapshot() []NATCheck {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]NATCheck, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b NATCheck) int { return b.At.Compare(a.At) })
	return out
}

// contactKey is a Contact as the log files it: user@host:port, so the
// check at REGISTER and the one at routing land on the same entry
// whatever parameters each spelling carries.
func contactKey(s string) string {
	var u sip.Uri
	if sip.ParseUri(strings.Trim(strings.TrimSpace(s), "<>"), &u) != nil {
		return s
	}
	port := u.Port
	if port == 0 {
		port = defaultPort(u)
	}
	return strings.ToLower(u.User + "@" + strings.Trim(u.Host, "[]") + ":" + strconv.Itoa(port))
}
