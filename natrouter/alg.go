package natrouter

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/siplab/siplab/natrouter/sipalg"
)

// ALGMode is a named SIP ALG behaviour: "off", "kernel" (Linux nf_nat_sip
// through an nft ct helper object, alg_kernel.go) or "broken" (the lab's
// consumer-router mangler on an NFQUEUE, alg_broken.go, with named faults
// from natrouter/sipalg). A new mode is a new file registering here.
//
// A mode is selected by a spec: its name, and for modes that take faults
// ":" and fault names joined by "+" ("broken:contact-not-via+strip-rport",
// "broken:none").
type ALGMode struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`

	// Faults is the fault set a spec selected (modes that take faults only).
	Faults sipalg.Set `json:"-"`

	// program adds the mode's objects, chains and rules to the ruleset.
	program func(rs *ruleset, p params)
	// check runs before anything is installed and refuses a mode the host
	// cannot run, with an explanation (kernel: no nf_nat_sip).
	check func() error
	// queue means the mode needs the NFQUEUE mangler running.
	queue bool
	// takesFaults: the spec may carry ":faults"; defaultFaults applies when
	// it does not.
	takesFaults   bool
	defaultFaults string
}

// Spec is the canonical text of the mode: what status shows and what
// `natrouter set alg` accepts back.
func (m ALGMode) Spec() string {
	if !m.takesFaults {
		return m.Name
	}
	return m.Name + ":" + m.Faults.String()
}

var algModes = map[string]ALGMode{}

func registerALG(m ALGMode) { register(algModes, "ALG mode", m.Name, m) }

// ParseALG resolves a spec ("off", "kernel", "broken",
// "broken:stale-content-length+rewrite-call-id", "broken:none").
func ParseALG(spec string) (ALGMode, error) {
	return lookupALG(spec)
}

func lookupALG(spec string) (ALGMode, error) {
	name, faults, hasFaults := strings.Cut(strings.TrimSpace(spec), ":")
	m, ok := algModes[name]
	if !ok {
		return ALGMode{}, fmt.Errorf("%w %q (known: %v; broken takes faults: broken:%s)",
			ErrUnknownALG, spec, ALGNames(), strings.Join(sipalg.FaultNames(), "+"))
	}
	if hasFaults && !m.takesFaults {
		return ALGMode{}, fmt.Errorf("%w %q: mode %s takes no faults", ErrUnknownALG, spec, name)
	}
	if m.takesFaults {
		if !hasFaults {
			faults = m.defaultFaults
		}
		set, err := sipalg.ParseSet(faults)
		if err != nil {
			return ALGMode{}, fmt.Errorf("%w %q: %w", ErrUnknownALG, spec, err)
		}
		m.Faults = set
	}
	return m, nil
}

// ALGModes returns the registered ALG modes sorted by name.
func ALGModes() []ALGMode { return byName(algModes) }

// ALGNames returns the registered ALG mode names sorted.
func ALGNames() []string { return slices.Sorted(maps.Keys(algModes)) }

func init() {
	registerALG(ALGMode{
		Name:    "off",
		Summary: "no SIP ALG: SIP and SDP leave the site untouched",
		program: func(*ruleset, params) {},
	})
}
