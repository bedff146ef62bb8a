package b2bua

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Target kinds a dial plan entry can send a call to.
const (
	// KindUser rings a registered user, found through the location service.
	KindUser = "user"
	// KindVoicemail answers the call and records a message for a mailbox.
	KindVoicemail = "voicemail"
)

// Target is where an extension goes.
type Target struct {
	Kind string `json:"kind"`
	// User is the user to ring (KindUser) or the mailbox owner (KindVoicemail;
	// empty means the caller's own mailbox).
	User string `json:"user,omitempty"`
}

func (t Target) String() string {
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

// DialPlan maps dialled numbers to targets. It is never modified after it
// is built, so it is safe for concurrent use.
type DialPlan struct {
	exts  map[string]Extension
	order []string
	// byUser finds a user's own extension, so dialling "bob" behaves as
	// dialling bob's number (forwarding rules included).
	byUser map[string]string
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
// "voicemail:<user>" (leave a message for user) or another extension's
// number (busy/noanswer only; its own target is used). '#' starts a
// comment line; fields are separated by blanks.
func ParseDialPlan(r io.Reader) (*DialPlan, error) {
	dp := &DialPlan{exts: map[string]Extension{}, byUser: map[string]string{}}
	type pending struct {
		line           int
		ext            string
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
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<number> <target> [options]\"", ErrDialPlan, n)
		}
		if !validNumber(f[0]) {
			return nil, fmt.Errorf("%w: line %d: number %q (digits, * and # only)", ErrDialPlan, n, f[0])
		}
		if _, dup := dp.exts[f[0]]; dup {
			return nil, fmt.Errorf("%w: line %d: number %s listed twice", ErrDialPlan, n, f[0])
		}
		t, err := parseTarget(f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrDialPlan, n, err)
		}
		e := Extension{Number: f[0], Target: t}
		p := pending{line: n, ext: f[0]}
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
		if t.Kind == KindUser {
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
	if len(dp.exts) == 0 {
		return nil, fmt.Errorf("%w: no extensions", ErrDialPlan)
	}
	return dp, nil
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
	case validUser(s):
		return Target{Kind: KindUser, User: s}, nil
	}
	return Target{}, fmt.Errorf("target %q is not a user name, voicemail or voicemail:<user>", s)
}

func validNumber(s string) bool {
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
		return e, true
	}
	if n, ok := dp.byUser[dialled]; ok {
		return dp.exts[n], true
	}
	return Extension{}, false
}

// ExtensionOf is the number of user's own extension, "" if none.
func (dp *DialPlan) ExtensionOf(user string) string { return dp.byUser[user] }

// Extensions lists the plan in file order.
func (dp *DialPlan) Extensions() []Extension {
	out := make([]Extension, 0, len(dp.order))
	for _, n := range dp.order {
		out = append(out, dp.exts[n])
	}
	return out
}
