package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
)

// Requests from outside the lab (the attacker at 203.0.113.66, any address
// no lab node owns on the internet) are a scanner's sweep or a password
// guesser: one note per source with counts, never one finding per packet
// — the lab is not broken by being scanned, and what each request "lacks"
// (a pinhole, credentials) is the scanner's problem.
func init() {
	register(Rule{Name: "scanner", Title: "requests from outside the lab (scanners, password guessing), grouped per source", CheckAll: checkScanner})
}

// scanner reports whether a dialog was started from outside the lab: its
// first request came from the attacker, or from an internet address no
// node of the lab plan owns. Without a plan nothing is a scanner.
func scanner(c *ladder.Call) bool {
	if c.Topo == nil || len(c.Topo.Nodes) == 0 {
		return false
	}
	req, _ := firstRequest(c)
	if req == nil {
		return false
	}
	src := req.Src.Addr()
	if n, ok := c.Topo.Owner(src); ok {
		return n.Role == ladder.RoleAttacker
	}
	net, ok := c.Topo.NetOf(src)
	return ok && net.Public
}

func checkScanner(all []*ladder.Call) []Finding {
	type src struct {
		dialogs  int
		methods  map[string]int
		targets  map[string]bool
		answers  map[string]int
		silent   int
		first    *ladder.Call
		whoFirst string
	}
	bySrc := map[string]*src{}
	var order []string
	for _, c := range all {
		if !scanner(c) {
			continue
		}
		req, _ := firstRequest(c)
		k := req.Src.Addr().String()
		s := bySrc[k]
		if s == nil {
			s = &src{methods: map[string]int{}, targets: map[string]bool{}, answers: map[string]int{}, first: c}
			bySrc[k] = s
			order = append(order, k)
		}
		s.dialogs++
		s.methods[req.Method]++
		s.targets[req.Receiver.Name()] = true
		answered := false
		for _, m := range c.Messages {
			if !m.Request && m.Status >= 200 {
				s.answers[fmt.Sprint(m.Status)]++
				answered = true
				break
			}
		}
		if !answered {
			s.silent++
		}
	}
	var out []Finding
	for _, k := range order {
		s := bySrc[k]
		who := k
		if n, ok := s.first.Topo.Owner(s.first.Messages[0].Src.Addr()); ok {
			who = fmt.Sprintf("%s (%s)", k, n.Name)
		}
		ev := []Evidence{{Call: s.first.ID, N: 1, Iface: s.first.Messages[0].Iface,
			What: fmt.Sprintf("%s; to %s; answers %s; unanswered %d", counts(s.methods), keys(s.targets), counts(s.answers), s.silent)}}
		out = append(out, Finding{Severity: Note, Count: s.dialogs,
			Summary:  fmt.Sprintf("scanner traffic: %d request(s) from %s, outside the lab", s.dialogs, who),
			Note:     "a sweep or a password guesser; unanswered requests were dropped (a router without a mapping, the SBC's guard blocking the source)",
			Fix:      "nothing breaks; the SBC's guard blocks such sources (siplab status lists them, siplab exec sbc unblock <ip>)",
			Evidence: ev})
	}
	return out
}

// counts is "OPTIONS ×10, REGISTER ×2" in name order ("none" when empty).
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

// keys is the set's members in name order, "a, b".
func keys(m map[string]bool) string { return strings.Join(slices.Sorted(maps.Keys(m)), ", ") }
