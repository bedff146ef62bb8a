package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/ladder"
)

// A registration lives for the Expires its 200 OK granted, not the one the
// phone asked for. A phone that dies without unregistering (power cut,
// crash, paused container) or whose refreshes never reach the registrar
// simply runs out: the registrar forgets the binding, and the next call for
// that AOR is answered 404/480 or not at all. The closed-pinhole rule sees
// the NAT's half of this story; this rule sees the registrar's, by reading
// the REGISTER dialogs next to the failing call.
func init() {
	register(Rule{Name: "registration-expired", Title: "request for an AOR whose registration ran out without a refresh", CheckWith: checkExpired})
}

// grant is one 200 OK to a REGISTER: where it was seen and how long the
// registrar said the binding lives.
type grant struct {
	call    *ladder.Call
	n       int // message number in call
	m       ladder.Message
	expires time.Duration
}

func (g grant) until() time.Time { return g.m.Time.Add(g.expires) }

func checkExpired(c *ladder.Call, all []*ladder.Call) []Finding {
	req, reqN := firstRequest(c)
	if req == nil || req.Method == "REGISTER" {
		return nil
	}
	aor := uriAOR(req.Header("To"))
	if aor == "" {
		return nil
	}
	final, finalN := finalTo(c, req.Method)
	// Only failures the expiry explains: "no such user" / "not
	// reachable now", a timeout, or nothing at all.
	if final != nil && final.Status != 404 && final.Status != 480 && final.Status != 408 {
		return nil
	}
	var last *grant
	tries := map[string]bool{} // REGISTERs (by CSeq) for the AOR after the last grant: none got a 2xx
	for _, g := range grants(all, aor) {
		if g.m.Time.After(req.Time) {
			break
		}
		last = &g
	}
	if last == nil || last.expires == 0 || !last.until().Before(req.Time) {
		// Never registered in this capture, explicitly unregistered, or
		// still valid when the request came: not an expiry.
		return nil
	}
	for _, rc := range all {
		for _, m := range rc.Messages {
			if m.Request && m.Method == "REGISTER" && uriAOR(m.Header("To")) == aor &&
				m.Time.After(last.m.Time) && m.Time.Before(req.Time) {
				tries[m.Header("CSeq")] = true
			}
		}
	}
	user := strings.SplitN(aor, "@", 2)[0]
	ev := []Evidence{{Call: last.call.ID, N: last.n, Iface: last.m.Iface,
		What: fmt.Sprintf("%s to REGISTER %s granted Expires %d s at %s (valid until %s); no refresh granted after it",
			last.m.Label, aor, int(last.expires.Seconds()), clock(last.m.Time), clock(last.until()))}}
	if len(tries) > 0 {
		ev[0].What += fmt.Sprintf("; %d REGISTER(s) for %s after it got no 2xx", len(tries), user)
	}
	ev = append(ev, Evidence{N: reqN, Iface: req.Iface,
		What: fmt.Sprintf("%s %s at %s, %s after the registration ran out", req.Method, requestURI(*req), clock(req.Time), req.Time.Sub(last.until()).Round(time.Second))})
	if final != nil {
		ev = append(ev, Evidence{N: finalN, Iface: final.Iface, What: final.Label + " to the " + req.Method})
	} else {
		ev[len(ev)-1].What += "; no final response"
	}
	return []Finding{{Severity: Error,
		Summary:  fmt.Sprintf("%s's registration expired: the last 200 OK granted %d s and nothing refreshed it, so the registrar forgot %s before this %s", user, int(last.expires.Seconds()), aor, req.Method),
		Fix:      fmt.Sprintf("bring the phone back and re-register (siplab exec %s register); a phone must refresh before Expires runs out (at about half of it), and unregister (Expires: 0) when it leaves", user),
		Evidence: ev}}
}

// grants lists the 200 OKs to REGISTERs for aor across all dialogs, in
// time order, one per hop (registrar → proxy, proxy → phone: the top Via
// differs), each at the first capture point that saw it.
func grants(all []*ladder.Call, aor string) []grant {
	var out []grant
	seen := map[string]bool{}
	for _, c := range all {
		for i, m := range c.Messages {
			if m.Request || m.Method != "REGISTER" || m.Status/100 != 2 || uriAOR(m.Header("To")) != aor {
				continue
			}
			k := copyKey(m)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, grant{call: c, n: i + 1, m: m, expires: grantedExpires(m)})
		}
	}
	// Dialogs are in order of their first message, not of their 200 OKs.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].m.Time.Before(out[j-1].m.Time); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// grantedExpires reads the lifetime a 200 OK to REGISTER grants: the
// longest expires= of its Contacts (RFC 3261 §10.3: the registrar lists
// every binding with its own), else the Expires header. Zero: none left.
func grantedExpires(m ladder.Message) time.Duration {
	best, found := -1, false
	for _, line := range strings.Split(string(m.Payload), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			if line == "" {
				break // end of headers
			}
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "contact" && name != "m" {
			continue
		}
		for _, contact := range strings.Split(value, ",") {
			for _, p := range strings.Split(contact, ";")[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "expires") {
					if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > best {
						best, found = n, true
					}
				}
			}
		}
	}
	if !found {
		if n, err := strconv.Atoi(strings.TrimSpace(m.Header("Expires"))); err == nil {
			best = n
		}
	}
	if best < 0 {
		best = 0
	}
	return time.Duration(best) * time.Second
}

// firstRequest is the call's first request (its initial one) and its
// message number.
func firstRequest(c *ladder.Call) (*ladder.Message, int) {
	for i := range c.Messages {
		if c.Messages[i].Request {
			return &c.Messages[i], i + 1
		}
	}
	return nil, 0
}

// finalTo is the last final response to method in the call (a 407
// challenge is followed by the authenticated retry's answer).
func finalTo(c *ladder.Call, method string) (*ladder.Message, int) {
	var out *ladder.Message
	n := 0
	for i := range c.Messages {
		m := &c.Messages[i]
		if !m.Request && m.Method == method && m.Status >= 200 {
			out, n = m, i+1
		}
	}
	return out, n
}

// uriAOR is "user@host" of the first sip: URI in a header value, lower
// case: the To of a REGISTER names the AOR, the To of a call its target.
func uriAOR(v string) string {
	i := strings.Index(strings.ToLower(v), "sip:")
	if i < 0 {
		return ""
	}
	v = v[i+4:]
	if end := strings.IndexAny(v, ">;?, "); end >= 0 {
		v = v[:end]
	}
	if !strings.Contains(v, "@") {
		return ""
	}
	return strings.ToLower(v)
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// requestURI is the Request-URI of a request's start line ("" if the line
// is too short to have one: captures of broken peers reach the rules too).
func requestURI(m ladder.Message) string {
	if f := strings.Fields(m.StartLine()); len(f) > 1 {
		return f[1]
	}
	return ""
}
