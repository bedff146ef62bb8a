package sipalg

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownFault is returned for a fault name not in the registry.
var ErrUnknownFault = errors.New("sipalg: unknown fault")

// Fault is one named way a consumer-router ALG gets SIP wrong. A new fault
// is a new file whose init calls registerFault; the pipeline in mangle.go
// calls the hooks a fault sets and ignores the others.
type Fault struct {
	Name string `json:"name"`
	// Summary says what the router does, in one line.
	Summary string `json:"summary"`
	// Symptom is what an intern sees in this lab.
	Symptom string `json:"symptom"`
	// Trace is how to recognise the fault in a capture.
	Trace string `json:"trace"`

	// order runs plan hooks in a fixed sequence: faults that add edits
	// before faults that filter them, "only the first" last.
	order int
	// drop, when set, drops a whole packet; it returns why.
	drop func(pkt PacketInfo) string
	// plan changes the list of rewrites the ALG will make.
	plan func(m *Message, p Params, edits []Edit) []Edit
	// raw changes the message text after the rewrites (before the
	// Content-Length fix-up).
	raw func(msg []byte) []byte
	// staleLength skips the Content-Length fix-up.
	staleLength bool
}

var faults = map[string]Fault{}

func registerFault(f Fault) {
	if _, dup := faults[f.Name]; dup {
		panic("sipalg: duplicate fault " + f.Name)
	}
	if strings.ContainsAny(f.Name, "+:, ") {
		panic("sipalg: fault name with a separator: " + f.Name)
	}
	faults[f.Name] = f
}

// Faults returns the registered faults sorted by name.
func Faults() []Fault {
	out := make([]Fault, 0, len(faults))
	for _, f := range faults {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FaultNames returns the registered fault names sorted.
func FaultNames() []string {
	var names []string
	for _, f := range Faults() {
		names = append(names, f.Name)
	}
	return names
}

// LookupFault returns the named fault.
func LookupFault(name string) (Fault, error) {
	f, ok := faults[name]
	if !ok {
		return Fault{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownFault, name, strings.Join(FaultNames(), ", "))
	}
	return f, nil
}

// Set is a validated, deduplicated combination of faults. The zero value is
// the ALG without faults.
type Set struct {
	list []Fault // in pipeline order
}

// ParseSet parses fault names separated by '+' or ','. "" and "none" are the
// empty set.
func ParseSet(s string) (Set, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return Set{}, nil
	}
	names := strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' })
	if len(names) == 0 {
		return Set{}, fmt.Errorf("%w: %q names no fault", ErrUnknownFault, s)
	}
	return NewSet(names...)
}

// NewSet builds a set from fault names.
func NewSet(names ...string) (Set, error) {
	seen := map[string]bool{}
	var set Set
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "none" {
			return Set{}, fmt.Errorf("%w: \"none\" cannot be combined with faults", ErrUnknownFault)
		}
		f, err := LookupFault(n)
		if err != nil {
			return Set{}, err
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		set.list = append(set.list, f)
	}
	sort.SliceStable(set.list, func(i, j int) bool {
		if set.list[i].order != set.list[j].order {
			return set.list[i].order < set.list[j].order
		}
		return set.list[i].Name < set.list[j].Name
	})
	return set, nil
}

// Names returns the set's fault names sorted alphabetically.
func (s Set) Names() []string {
	names := make([]string, 0, len(s.list))
	for _, f := range s.list {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

// Faults returns the set's faults sorted by name.
func (s Set) Faults() []Fault {
	out := append([]Fault(nil), s.list...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Has reports whether the set holds the named fault.
func (s Set) Has(name string) bool {
	for _, f := range s.list {
		if f.Name == name {
			return true
		}
	}
	return false
}

// String is the canonical form: names joined by '+', or "none".
func (s Set) String() string {
	if len(s.list) == 0 {
		return "none"
	}
	return strings.Join(s.Names(), "+")
}
