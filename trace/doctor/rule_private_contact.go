package doctor

import (
	"fmt"
	"net/netip"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// Lie 2 of module 08: the Contact — where the phone says it can be reached
// for new requests — is its private address, seen on the internet side.
// A platform that trusts it sends requests into the void. The lab's proxy
// usually hides the lie: contact_fixup routes to the address the REGISTER
// came from (the SBC latches to it), and the calls work. So the finding is
// a note while nothing went to the private address, and an error when the
// call shows a request heading for it (seen leaving on a public side) or
// never arriving.
func init() {
	register(Rule{Name: "private-contact", Title: "private address in Contact on the internet side", CheckWith: checkPrivateContact})
}

func checkPrivateContact(c *ladder.Call, all []*ladder.Call) []Finding {
	var ev []Evidence
	addrs := map[netip.Addr]bool{}
	// One line per Contact (its first message on a public side) with a
	// count of the others: a registration repeats it every refresh, and
	// the proxy relays it once more.
	first := map[string]int{}
	count := map[string]int{}
	for i, m := range c.Messages {
		if !public(c, m.Iface) || !carriesContact(m) {
			continue
		}
		contact := m.Header("Contact")
		a, ok := siptext.HostAddr(siptext.URIHost(contact))
		if !ok || !siptext.Private(a) {
			continue
		}
		addrs[a] = true
		if _, ok := first[contact]; !ok {
			first[contact] = len(ev)
			ev = append(ev, Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("%s from %s: Contact: %s", m.Label, m.Src, contact)})
		}
		count[contact]++
	}
	for contact, i := range first {
		if n := count[contact] - 1; n > 0 {
			ev[i].What += fmt.Sprintf(" (and %d more message(s) on the internet side with it)", n)
		}
	}
	// The callee's registration: a call whose target registered a private
	// Contact, and whose INVITE never left the proxy, went to that Contact.
	var hurt []Evidence
	if reg, addr, ok := registeredContact(c, all); ok {
		ev = append(ev, reg)
		addrs[addr] = true
		for _, l := range lostRequests(c) {
			if m := c.Messages[l.n-1]; m.Method == "INVITE" {
				hurt = append(hurt, Evidence{N: l.n, Iface: m.Iface,
					What: fmt.Sprintf("%s for the phone never left the proxy (answers %v): it was routed to the registered private Contact", m.Label, l.answers)})
			}
		}
	}
	if len(ev) == 0 {
		return nil
	}
	// The consequence: a request sent to (or addressed to) the private
	// address on a public side, i.e. the platform believed the Contact.
	for i, m := range c.Messages {
		if !m.Request || !public(c, m.Iface) {
			continue
		}
		if addrs[m.Dst.Addr()] {
			hurt = append(hurt, Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("%s sent to %s: the private Contact, unreachable from here", m.Label, m.Dst)})
		}
	}
	hurt = append(hurt, lostTowards(c, addrs)...)
	if len(hurt) > 0 {
		return []Finding{{Severity: Error,
			Summary:  "the phone's Contact is its private address and the platform used it: requests for the phone went to an address no one on the internet can reach",
			Fix:      "route to the address the request came from (siplab set proxy contact_fixup auto), or make the phone write its public address (siplab set <phone> contact_addr <router public ip>) with keep-alives",
			Evidence: append(ev, hurt...)}}
	}
	return []Finding{{Severity: Note,
		Summary:  "a Contact seen on the internet side is a private address (a phone's LAN address, or the platform core's); nothing in this dialog was sent to it",
		Note:     "the proxy's contact_fixup (routing to the address the REGISTER came from) is probably hiding it: calls work here, but any server without that fix-up, or the same proxy with it off, sends the phone's calls into the void",
		Fix:      "nothing breaks today; to remove the dependency write the public address (siplab set <phone> contact_addr <router public ip>), or keep contact_fixup auto",
		Evidence: ev}}
}

// carriesContact: requests and 2xx responses that set a dialog's or a
// registration's remote target (RFC 3261 §12.1, §10.2).
func carriesContact(m ladder.Message) bool {
	if m.Request {
		switch m.Method {
		case "REGISTER", "INVITE", "SUBSCRIBE", "REFER", "UPDATE":
			return true
		}
		return false
	}
	return m.Status/100 == 2 && (m.Method == "INVITE" || m.Method == "SUBSCRIBE")
}

// lostTowards finds in-dialog requests whose Request-URI is one of the
// private Contacts and that were retransmitted without an answer at a
// public point: the platform forwarded them to the private address (which
// no capture point downstream can see) and nothing came back.
func lostTowards(c *ladder.Call, addrs map[netip.Addr]bool) []Evidence {
	type tx struct {
		first, copies int
		answered      bool
	}
	byKey := map[string]*tx{}
	var order []string
	for i, m := range c.Messages {
		if m.Request && m.Method == "ACK" {
			continue // never answered by design
		}
		// CSeq numbers repeat across a call's legs: the leg is part of
		// the transaction's name when there are several.
		k := m.Header("CSeq")
		if len(c.Legs) > 1 {
			k = fmt.Sprintf("%s, leg %d", k, m.Leg)
		}
		if m.Request {
			a, ok := siptext.HostAddr(siptext.URIHost(m.StartLine()))
			if !ok || !addrs[a] || !public(c, m.Iface) {
				continue
			}
			t := byKey[k]
			if t == nil {
				t = &tx{first: i}
				byKey[k] = t
				order = append(order, k)
			}
			t.copies++
			continue
		}
		if t := byKey[k]; t != nil && m.Status >= 200 && m.Status != 408 {
			t.answered = true
		}
	}
	var ev []Evidence
	for _, k := range order {
		t := byKey[k]
		if t.answered || t.copies < 2 {
			continue
		}
		m := c.Messages[t.first]
		ev = append(ev, Evidence{N: t.first + 1, Iface: m.Iface,
			What: fmt.Sprintf("%s for %s (CSeq %s) sent %d times, never answered", m.Label, requestURI(m), k, t.copies)})
	}
	return ev
}

// registeredContact finds, for an INVITE dialog, the last REGISTER of its
// target (the To AOR) seen on a public side before the INVITE — the binding
// the proxy routes the call by — and reports it when its Contact is
// private. A later REGISTER with a public Contact replaces it.
func registeredContact(c *ladder.Call, all []*ladder.Call) (Evidence, netip.Addr, bool) {
	req, _ := firstRequest(c)
	if req == nil || req.Method != "INVITE" {
		return Evidence{}, netip.Addr{}, false
	}
	aor := uriAOR(req.Header("To"))
	var last *ladder.Message
	var lastCall *ladder.Call
	lastN := 0
	for _, rc := range all {
		if rc == c {
			continue
		}
		for i := range rc.Messages {
			m := &rc.Messages[i]
			if !m.Request || m.Method != "REGISTER" || !public(rc, m.Iface) || m.Time.After(req.Time) || uriAOR(m.Header("To")) != aor {
				continue
			}
			// Dialogs come in order of their first message, not of their
			// REGISTERs: keep the latest by time.
			if last == nil || m.Time.After(last.Time) {
				last, lastCall, lastN = m, rc, i+1
			}
		}
	}
	if last == nil {
		return Evidence{}, netip.Addr{}, false
	}
	contact := last.Header("Contact")
	a, ok := siptext.HostAddr(siptext.URIHost(contact))
	if !ok || !siptext.Private(a) {
		return Evidence{}, netip.Addr{}, false
	}
	return Evidence{Call: lastCall.ID, N: lastN, Iface: last.Iface,
		What: fmt.Sprintf("REGISTER of the callee %s from %s: Contact: %s", aor, last.Src, contact)}, a, true
}
