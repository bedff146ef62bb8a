// Package doctor diagnoses the classic SIP/NAT failures from captures: each
// rule reads one call (ladder.Call: every copy of every message across the
// capture points) and reports findings that name their evidence — the
// message number in that call's ladder and the capture point that saw it.
//
// Rules are a small registry, one file per rule, like the ALG faults: a
// new diagnosis is a new file whose init calls register.
package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// Severity orders findings: an error explains a failure, a warning is a
// fault that will bite without any change to the lab, a note is a lie
// something else papers over today (shown with -notes) or traffic worth
// knowing about that breaks nothing (a scanner, a ping a peer missed while
// it started).
type Severity int

const (
	Note Severity = iota + 1
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// ParseSeverity reads "note", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Note, Warning, Error} {
		if strings.EqualFold(s, v.String()) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("doctor: severity %q: want note, warning or error", s)
}

// Evidence points at one message (or stream) of the call, or of another
// dialog (a registration) when Call is set.
type Evidence struct {
	// Call is the Call-ID of the dialog the message belongs to when it is
	// not the diagnosed call (`siplab ladder <Call>` numbers it); "" for
	// the diagnosed call itself.
	Call string
	// N is the message's number in the call's ladder (1-based); 0 for RTP.
	N     int
	Iface string // capture point, "router-a/wan"
	What  string // the line or fact that shows it
}

func (e Evidence) String() string {
	where := e.Iface
	if e.Call != "" {
		where += " in call " + e.Call
	}
	if e.N == 0 {
		return fmt.Sprintf("%s: %s", where, e.What)
	}
	return fmt.Sprintf("#%d at %s: %s", e.N, where, e.What)
}

// Finding is one diagnosis.
type Finding struct {
	Rule     string
	Severity Severity
	Summary  string
	// Note qualifies the finding: why it is only a warning, what may be
	// hiding its effect.
	Note string
	// Fix is the remedy, in the lab's terms.
	Fix      string
	Evidence []Evidence
	// Call is the dialog the finding is about; nil for a finding that
	// groups many dialogs (keep-alives, a scanner's sweep).
	Call *ladder.Call
	// Count is how many dialogs or packets a grouped finding stands for.
	Count int
}

// Rule is one registered diagnosis: Check reads one call; CheckWith also
// gets every dialog of the capture, for diagnoses whose evidence is in
// another dialog (the REGISTER behind a failed INVITE); CheckAll reads
// every dialog at once and groups what repeats (keep-alives, scanners)
// into one finding. A rule sets one.
type Rule struct {
	Name      string
	Title     string
	Check     func(c *ladder.Call) []Finding
	CheckWith func(c *ladder.Call, all []*ladder.Call) []Finding
	CheckAll  func(all []*ladder.Call) []Finding
}

func (r Rule) run(c *ladder.Call, all []*ladder.Call) []Finding {
	switch {
	case r.CheckWith != nil:
		return r.CheckWith(c, all)
	case r.Check != nil:
		return r.Check(c)
	}
	return nil
}

var rules = map[string]Rule{}

func register(r Rule) {
	if _, dup := rules[r.Name]; dup {
		panic("doctor: duplicate rule " + r.Name)
	}
	rules[r.Name] = r
}

// Rules returns the registered rules sorted by name.
func Rules() []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Check runs every rule on the call alone (rules that need other dialogs
// see only this one); errors first, then by rule name.
func Check(c *ladder.Call) []Finding { return CheckIn([]*ladder.Call{c}, c) }

// CheckIn runs every per-dialog rule on c, one of all (every dialog of
// the capture, as ladder.Build returns them); errors first, then by rule
// name.
func CheckIn(all []*ladder.Call, c *ladder.Call) []Finding {
	var out []Finding
	for _, r := range Rules() {
		for _, f := range r.run(c, all) {
			f.Rule, f.Call = r.Name, c
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity > out[j].Severity })
	return out
}

// Diagnose runs every rule over targets, a subset of all (every dialog of
// the capture, which rules read for context: the REGISTER behind a call):
// the per-dialog rules on each target except pings and scanners, and the
// grouping rules (keepalive, scanner) once over the targets. Findings come
// in dialog order, grouped findings last.
func Diagnose(all, targets []*ladder.Call) []Finding {
	var out []Finding
	for _, c := range targets {
		// Pings and scanners repeat by the hundred: their rules group
		// them (keepalive, scanner) instead of a finding per dialog.
		if c.Kind() == "OPTIONS" || scanner(c) {
			continue
		}
		out = append(out, CheckIn(all, c)...)
	}
	for _, r := range Rules() {
		if r.CheckAll == nil {
			continue
		}
		for _, f := range r.CheckAll(targets) {
			f.Rule = r.Name
			out = append(out, f)
		}
	}
	return out
}

// public reports whether a capture point of the call records the internet
// (a router's wan, a platform host's internet side), from the lab plan the
// call was built with.
func public(c *ladder.Call, iface string) bool { return c.Topo.PublicPoint(iface) }

// node is the capture point's node: "router-a/wan" → "router-a".
func node(iface string) string { return ladder.PointNode(iface) }

// addrOf is hostAddr for a sip: URI's host[:port].

// sdpLines returns the SDP body's lines of one message ("c=IN IP4 ...").
func sdpLines(m ladder.Message) []string {
	if !m.SDP {
		return nil
	}
	_, body, _ := strings.Cut(string(m.Payload), "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// copyKey identifies one message across its copies: top Via branch, CSeq
// and start line (the Call-ID may be rewritten by an ALG, the branch is
// not; a request and its response share branch and CSeq but not start line).
func copyKey(m ladder.Message) string {
	_, params := siptext.TopVia(m.Header("Via"))
	return params["branch"] + "\x00" + m.Header("CSeq") + "\x00" + m.StartLine()
}

// withEvidence keeps the findings that have evidence: a rule that looks
// for several faults at once reports only those it saw.
func withEvidence(fs ...Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if len(f.Evidence) > 0 {
			out = append(out, f)
		}
	}
	return out
}
