package doctor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// OPTIONS pings keep NAT pinholes open and tell a peer's health: the SBC
// pings the phones registered through it and the carrier, the carrier
// pings the SBC, phones ping on request. They come every few seconds, so
// they are read as one stream per pinger and peer, never one finding per
// ping: silence is nothing to report; a peer that missed some pings and
// answers again is a note (it was starting or restarting); a peer whose
// latest pings all went unanswered is an error, with where they stopped.
func init() {
	register(Rule{Name: "keepalive", Title: "OPTIONS pings a peer stopped answering (grouped per pinger and peer)", CheckAll: checkKeepalive})
}

// inFlight is how close to the end of the capture an unanswered ping may
// be and still be waiting for its answer.
const inFlight = 5 * time.Second

type ping struct {
	c        *ladder.Call
	at       time.Time
	answered bool
}

func checkKeepalive(all []*ladder.Call) []Finding {
	var end time.Time
	for _, c := range all {
		if c.End.After(end) {
			end = c.End
		}
	}
	type pair struct{ from, to string }
	groups := map[pair][]ping{}
	var order []pair
	for _, c := range all {
		if c.Kind() != "OPTIONS" || scanner(c) {
			continue
		}
		req, _ := firstRequest(c)
		if req == nil {
			continue
		}
		k := pair{req.Sender.Name(), peerOf(c, *req)}
		if groups[k] == nil {
			order = append(order, k)
		}
		p := ping{c: c, at: req.Time}
		for _, m := range c.Messages {
			if !m.Request && m.Status > 0 {
				p.answered = true
			}
		}
		if !p.answered && end.Sub(p.at) < inFlight {
			continue
		}
		groups[k] = append(groups[k], p)
	}
	var out []Finding
	for _, k := range order {
		ps := groups[k]
		sort.Slice(ps, func(i, j int) bool { return ps[i].at.Before(ps[j].at) })
		missed, lastMissed := 0, -1
		for i, p := range ps {
			if !p.answered {
				missed++
				lastMissed = i
			}
		}
		if missed == 0 {
			continue
		}
		lost := ps[lastMissed]
		ev := []Evidence{{Call: lost.c.ID, N: 1, Iface: lost.c.Messages[0].Iface,
			What: fmt.Sprintf("%d of %d OPTIONS pings from %s to %s unanswered, the last at %s; %s", missed, len(ps), k.from, k.to, clock(lost.at), whereStopped(lost.c))}}
		if lastMissed < len(ps)-1 {
			out = append(out, Finding{Severity: Note, Count: missed,
				Summary:  fmt.Sprintf("%s's OPTIONS pings to %s went unanswered %d time(s), then %s answered again", k.from, k.to, missed, k.to),
				Note:     "a peer starting up or restarting misses a ping or two; nothing is wrong now",
				Fix:      "nothing to do; if it repeats, read the ladder of one unanswered ping (siplab ladder <Call-ID>)",
				Evidence: ev})
			continue
		}
		out = append(out, Finding{Severity: Error, Count: missed,
			Summary:  fmt.Sprintf("%s's latest OPTIONS pings to %s went unanswered: %s is down or unreachable from %s", k.from, k.to, k.to, k.from),
			Fix:      "see where the pings stop (siplab ladder <Call-ID>): at a router's internet side the pinhole is closed (keep-alives, siplab doctor's state rules); at the peer, the peer is down (siplab status)",
			Evidence: ev})
	}
	return out
}

// peerOf names who a ping is for: the user it is addressed to (a phone the
// SBC pings), or the node owning the Request-URI's address (the carrier).
func peerOf(c *ladder.Call, req ladder.Message) string {
	if aor := uriAOR(req.Header("To")); aor != "" {
		user, _, _ := strings.Cut(aor, "@")
		return user
	}
	host := siptext.URIHost(requestURI(req))
	if a, ok := siptext.HostAddr(host); ok {
		if n, ok := c.Topo.Owner(a); ok {
			return n.Name
		}
		return a.String()
	}
	return host
}

// whereStopped says which capture points saw a request that got no answer
// and, when a router saw it arrive but never forwarded it, that the NAT
// dropped it.
func whereStopped(c *ladder.Call) string {
	var seen []string
	arrived, left := map[string]bool{}, map[string]bool{}
	for _, m := range c.Messages {
		if !m.Request {
			continue
		}
		for _, p := range m.Seen {
			if !containsStr(seen, p) {
				seen = append(seen, p)
			}
			if c.Topo.IsRouter(p) {
				if c.Topo.PublicPoint(p) {
					arrived[node(p)] = true
				} else {
					left[node(p)] = true
				}
			}
		}
	}
	for r := range arrived {
		if !left[r] {
			return fmt.Sprintf("seen at %s, never on %s's LAN: the router dropped it (no NAT mapping: the pinhole closed)", strings.Join(seen, ", "), r)
		}
	}
	return "seen at " + strings.Join(seen, ", ") + ", no answer anywhere"
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
