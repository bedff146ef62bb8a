package b2bua

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target kinds a dial plan entry can send a call to.
const (
	// KindUser rings a registered user, found through the location service.
	KindUser = "user"
	// KindVoicemail answers the call and records a message for a mailbox.
	KindVoicemail = "voicemail"
	// KindTrunk sends the call to a SIP trunk (the SBC in front of a
	// carrier) as sip:<Number>@<trunk ip>.
	KindTrunk = "trunk"
)

// Target is where an extension goes.
type Target struct {
	Kind string `json:"kind"`
	// User is the user to ring (KindUser) or the mailbox owner (KindVoicemail;
	// empty means the caller's own mailbox).
	User string `json:"user,omitempty"`
	// Trunk is the next hop of a KindTrunk target; Number is what it is
	// asked for (the dialled number after a prefix rule's strip/prepend).
	Trunk  netip.AddrPort `json:"trunk,omitzero"`
	Number string         `json:"number,omitempty"`
}

func (t Target) String() string {
	if t.Kind == KindTrunk {
		if t.Number != "" {
			return "trunk:" + t.Number + "@" + t.Trunk.String()
		}
		return "trunk:" + t.Trunk.String()
	}
	if t.Kind == KindVoicemail {
		if t.User == "" {
			return "voicemail"
		}
		return "voicemail:" + t.User
	}
	return t.User
}

// Extension is one dial plan line.
type Extension struct {
	Number string `json:"number"`
	Target Target `json:"target"`
	// Busy and NoAnswer are where the call goes when the user is busy
	// (486/600) or does not answer within Timeout (or is not registered).
	// Nil: the caller gets the failure.
	Busy     *Target       `json:"busy,omitempty"`
	NoAnswer *Target       `json:"no_answer,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

// Prefix is an outbound rule: dialled numbers that start with Prefix (and
// are digits after it) go to a trunk as Prepend + number[Strip:].
type Prefix struct {
	Prefix  string         `json:"prefix"`
	Trunk   netip.AddrPort `json:"trunk"`
	Strip   int            `json:"strip,omitempty"`
	Prepend string         `json:"prepend,omitempty"`
}

// DialPlan maps dialled numbers to targets. It is never modified after it
// is built, so it is safe for concurrent use.
type DialPlan struct {
	exts  map[string]Extension
	order []string
	// byUser finds a user's own extension, so dialling "bob" behaves as
	// dialling bob's number (forwarding rules included).
	byUser map[string]string
	// didOf is a user's first DID: the caller id it presents on trunks.
	didOf map[string]string
	// prefixes, longest first: outbound rules tried after exact numbers.
	prefixes []Prefix
}

// ParseDialPlan reads the dial plan format, one extension a line:
//
//	# number  target            [busy=<target>] [noanswer=<target>] [timeout=<duration>]
//	100       alice             busy=voicemail:alice noanswer=voicemail:alice timeout=15s
//	101       bob               noanswer=102
//	102       carol
//	*97       voicemail
//
// A target is a user name, "voicemail" (the caller's own mailbox),
// "voicemail:<user>" (leave a message for user), "trunk:<ip:port>" (the
// dialled number is sent to that trunk) or another extension's number
// (busy/noanswer only; its own target is used). '#' starts a comment
// line; fields are separated by blanks.
//
// A number may be an E.164 DID ("+15550100 alice", or "+15550100 100"
// to take extension 100 with its forwards): calls the carrier delivers
// for that number reach the extension, and the user's first DID is its
// caller id on trunk calls. Outbound rules route numbers by prefix:
//
//	prefix  <prefix>  trunk:<ip:port>  [strip=<n>] [prepend=<digits>]
//	prefix  +         trunk:10.0.0.5:5060
//	prefix  9         trunk:10.0.0.5:5060  strip=1 prepend=+
//
// Exact numbers win over prefixes; the longest prefix wins among them.
func ParseDialPlan(r io.Reader) (*DialPlan, error) {
	dp := &DialPlan{exts: map[string]Extension{}, byUser: map[string]string{}, didOf: map[string]string{}}
	type pending struct {
		line           int
		ext            string
		alias          string // a DID naming an extension number
		busy, noanswer string
	}
	var later []pending
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if strings.EqualFold(f[0], "prefix") {
			p, err := parsePrefix(f[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", ErrDialPlan, n, err)
			}
			if slices.ContainsFunc(dp.prefixes, func(x Prefix) bool { return x.Prefix == p.Prefix }) {
				return nil, fmt.Errorf("%w: line %d: prefix %s listed twice", ErrDialPlan, n, p.Prefix)
			}
			dp.prefixes = append(dp.prefixes, p)
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<number> <target> [options]\"", ErrDialPlan, n)
		}
		if !validNumber(f[0]) {
			return nil, fmt.Errorf("%w: line %d: number %q (digits, * and #, or +digits for a DID)", ErrDialPlan, n, f[0])
		}
		if _, dup := dp.exts[f[0]]; dup {
			return nil, fmt.Errorf("%w: line %d: number %s listed twice", ErrDialPlan, n, f[0])
		}
		p := pending{line: n, ext: f[0]}
		if isDID(f[0]) && validNumber(f[1]) && !isDID(f[1]) && len(f) == 2 {
			// "+15550100 100": resolved below, when every extension is known
			// (a plain user named "100" is taken if no extension is).
			p.alias = f[1]
		}
		t, err := parseTarget(f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrDialPlan, n, err)
		}
		e := Extension{Number: f[0], Target: t}
		for _, opt := range f[2:] {
			k, v, ok := strings.Cut(opt, "=")
			if !ok || v == "" {
				return nil, fmt.Errorf("%w: line %d: option %q is not key=value", ErrDialPlan, n, opt)
			}
			switch strings.ToLower(k) {
			case "busy":
				p.busy = v
			case "noanswer":
				p.noanswer = v
			case "timeout":
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 || d > 10*time.Minute {
					return nil, fmt.Errorf("%w: line %d: timeout %q (a duration up to 10m, e.g. 15s)", ErrDialPlan, n, v)
				}
				e.Timeout = d
			default:
				return nil, fmt.Errorf("%w: line %d: unknown option %q (busy, noanswer, timeout)", ErrDialPlan, n, k)
			}
		}
		dp.exts[e.Number] = e
		dp.order = append(dp.order, e.Number)
		if t.Kind == KindUser && !isDID(e.Number) && p.alias == "" {
			if _, ok := dp.byUser[t.User]; !ok {
				dp.byUser[t.User] = e.Number
			}
		}
		later = append(later, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDialPlan, err)
	}
	// Forward targets may name extensions defined further down.
	for _, p := range later {
		if p.alias != "" {
			continue
		}
		e := dp.exts[p.ext]
		var err error
		if p.busy != "" {
			if e.Busy, err = dp.forwardTarget(p.busy); err != nil {
				return nil, fmt.Errorf("%w: line %d: busy: %w", ErrDialPlan, p.line, err)
			}
		}
		if p.noanswer != "" {
			if e.NoAnswer, err = dp.forwardTarget(p.noanswer); err != nil {
				return nil, fmt.Errorf("%w: line %d: noanswer: %w", ErrDialPlan, p.line, err)
			}
		}
		dp.exts[p.ext] = e
	}
	// DIDs naming an extension take it whole (target, forwards, timeout),
	// once the extensions' forwards are resolved.
	for _, p := range later {
		if p.alias == "" {
			continue
		}
		if x, ok := dp.exts[p.alias]; ok && !isDID(x.Number) {
			x.Number = p.ext
			dp.exts[p.ext] = x
		}
	}
	for _, num := range dp.order {
		if e := dp.exts[num]; isDID(num) && e.Target.Kind == KindUser {
			if _, ok := dp.didOf[e.Target.User]; !ok {
				dp.didOf[e.Target.User] = num
			}
		}
	}
	if len(dp.exts) == 0 {
		return nil, fmt.Errorf("%w: no extensions", ErrDialPlan)
	}
	slices.SortStableFunc(dp.prefixes, func(a, b Prefix) int { return cmp.Compare(len(b.Prefix), len(a.Prefix)) })
	return dp, nil
}

// parsePrefix reads the fields after "prefix".
func parsePrefix(f []string) (Prefix, error) {
	if len(f) < 2 {
		return Prefix{}, fmt.Errorf("want \"prefix <prefix> trunk:<ip:port> [strip=<n>] [prepend=<digits>]\"")
	}
	p := Prefix{Prefix: f[0]}
	if !validPrefix(p.Prefix) {
		return Prefix{}, fmt.Errorf("prefix %q (digits, * and #, optionally after a +)", p.Prefix)
	}
	t, err := parseTarget(f[1])
	if err != nil || t.Kind != KindTrunk {
		return Prefix{}, fmt.Errorf("prefix %s: target %q is not trunk:<ip:port>", p.Prefix, f[1])
	}
	p.Trunk = t.Trunk
	for _, opt := range f[2:] {
		k, v, ok := strings.Cut(opt, "=")
		if !ok || v == "" {
			return Prefix{}, fmt.Errorf("option %q is not key=value", opt)
		}
		switch strings.ToLower(k) {
		case "strip":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > len(p.Prefix) {
				return Prefix{}, fmt.Errorf("strip=%s (0 to the prefix length %d)", v, len(p.Prefix))
			}
			p.Strip = n
		case "prepend":
			if !validPrefix(v) {
				return Prefix{}, fmt.Errorf("prepend=%s (digits, optionally after a +)", v)
			}
			p.Prepend = v
		default:
			return Prefix{}, fmt.Errorf("unknown option %q (strip, prepend)", k)
		}
	}
	return p, nil
}

// isDID reports an E.164 number: "+" and digits.
func isDID(s string) bool { return len(s) > 1 && s[0] == '+' && allDigits(s[1:]) }

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func validPrefix(s string) bool {
	rest := strings.TrimPrefix(s, "+")
	if len(s) > 16 || (rest == "" && s != "+") {
		return false
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9') && r != '*' && r != '#' {
			return false
		}
	}
	return true
}

// LoadDialPlan reads a dial plan file.
func LoadDialPlan(path string) (*DialPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDialPlan, err)
	}
	defer f.Close()
	return ParseDialPlan(f)
}

// forwardTarget resolves a busy/noanswer value: an extension number takes
// that extension's target (one level only, so forwards cannot loop).
func (dp *DialPlan) forwardTarget(v string) (*Target, error) {
	if e, ok := dp.exts[v]; ok {
		t := e.Target
		return &t, nil
	}
	t, err := parseTarget(v)
	if err != nil {
		return nil, err
	}
	if t.Kind == KindTrunk {
		// Which number would the trunk be asked for? Not the extension's.
		return nil, fmt.Errorf("%q: forwards go to users, extensions or voicemail, not trunks", v)
	}
	return &t, nil
}

func parseTarget(s string) (Target, error) {
	low := strings.ToLower(s)
	switch {
	case low == "voicemail":
		return Target{Kind: KindVoicemail}, nil
	case strings.HasPrefix(low, "voicemail:"):
		u := s[len("voicemail:"):]
		if !validUser(u) {
			return Target{}, fmt.Errorf("mailbox user %q", u)
		}
		return Target{Kind: KindVoicemail, User: u}, nil
	case strings.HasPrefix(low, "trunk:"):
		hop := s[len("trunk:"):]
		ap, err := netip.ParseAddrPort(hop)
		if err != nil {
			ip, ierr := netip.ParseAddr(hop)
			if ierr != nil {
				return Target{}, fmt.Errorf("trunk %q: want ip[:port]", hop)
			}
			ap = netip.AddrPortFrom(ip, 5060)
		}
		if ap.Port() == 0 {
			return Target{}, fmt.Errorf("trunk %q: port 0", hop)
		}
		return Target{Kind: KindTrunk, Trunk: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
	case validUser(s):
		return Target{Kind: KindUser, User: s}, nil
	}
	return Target{}, fmt.Errorf("target %q is not a user name, voicemail, voicemail:<user> or trunk:<ip:port>", s)
}

func validNumber(s string) bool {
	if isDID(s) {
		return len(s) <= 16 // E.164: at most 15 digits
	}
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9') && r != '*' && r != '#' {
			return false
		}
	}
	return true
}

func validUser(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.+", r):
		default:
			return false
		}
	}
	return true
}

// Lookup finds what a dialled Request-URI user reaches: an extension
// number, or a user name that has an extension (dialling "bob" = bob's
// number). Anything else is not ours to route: 404.
func (dp *DialPlan) Lookup(dialled string) (Extension, bool) {
	if e, ok := dp.exts[dialled]; ok {
		e.Target = dp.withNumber(e.Target, dialled)
		return e, true
	}
	if n, ok := dp.byUser[dialled]; ok {
		return dp.exts[n], true
	}
	for _, p := range dp.prefixes {
		rest, ok := strings.CutPrefix(dialled, p.Prefix)
		if !ok || !allDigits(rest) {
			continue
		}
		num := p.Prepend + dialled[p.Strip:]
		return Extension{Number: dialled, Target: Target{Kind: KindTrunk, Trunk: p.Trunk, Number: num}}, true
	}
	return Extension{}, false
}

// withNumber fills a trunk target's number with what was dialled.
func (dp *DialPlan) withNumber(t Target, dialled string) Target {
	if t.Kind == KindTrunk && t.Number == "" {
		t.Number = dialled
	}
	return t
}

// ExtensionOf is the number of user's own extension, "" if none.
func (dp *DialPlan) ExtensionOf(user string) string { return dp.byUser[user] }

// DIDOf is user's first DID ("+15550100"), "" if none: the caller id the
// PBX presents when user calls out through a trunk.
func (dp *DialPlan) DIDOf(user string) string { return dp.didOf[user] }

// Prefixes lists the outbound rules, longest prefix first.
func (dp *DialPlan) Prefixes() []Prefix { return slices.Clone(dp.prefixes) }

// Extensions lists the plan in file order.
func (dp *DialPlan) Extensions() []Extension {
	out := make([]Extension, 0, len(dp.order))
	for _, n := range dp.order {
		out = append(out, dp.exts[n])
	}
	return out
}
