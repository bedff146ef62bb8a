package natrouter

import (
	"fmt"
	"sort"
)

// ALGMode is a named SIP ALG behaviour. Only "off" exists today; "kernel"
// (nf_nat_sip through an nft ct helper object) and "broken" (an NFQUEUE
// mangler in Go) are planned and will be new files registering here.
type ALGMode struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`

	// program adds the mode's objects, chains and rules to the ruleset.
	program func(rs *ruleset, p params)
}

var algModes = map[string]ALGMode{}

func registerALG(m ALGMode) {
	if _, dup := algModes[m.Name]; dup {
		panic("natrouter: duplicate ALG mode " + m.Name)
	}
	algModes[m.Name] = m
}

func lookupALG(name string) (ALGMode, error) {
	m, ok := algModes[name]
	if !ok {
		return ALGMode{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownALG, name, ALGNames())
	}
	return m, nil
}

// ALGModes returns the registered ALG modes sorted by name.
func ALGModes() []ALGMode {
	out := make([]ALGMode, 0, len(algModes))
	for _, m := range algModes {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ALGNames returns the registered ALG mode names sorted.
func ALGNames() []string {
	var names []string
	for _, m := range ALGModes() {
		names = append(names, m.Name)
	}
	return names
}

func init() {
	registerALG(ALGMode{
		Name:    "off",
		Summary: "no SIP ALG: SIP and SDP leave the site untouched",
		program: func(*ruleset, params) {},
	})
}
