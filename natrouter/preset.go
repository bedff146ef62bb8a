package natrouter

import (
	"fmt"
	"maps"
	"slices"
)

// Behaviour names use RFC 4787 vocabulary.
const (
	EndpointIndependent     = "endpoint-independent"
	AddressDependent        = "address-dependent"
	AddressAndPortDependent = "address-and-port-dependent"
)

// Preset is a named NAT behaviour. A new preset is a new file that calls
// registerPreset from init; nothing else in the package changes.
type Preset struct {
	Name string `json:"name"`
	// Mapping is the RFC 4787 §4.1 mapping behaviour: when does the NAT
	// reuse an external address:port for an internal address:port.
	Mapping string `json:"mapping"`
	// Filtering is the RFC 4787 §5 filtering behaviour: which inbound
	// packets to a mapping are let through.
	Filtering string `json:"filtering"`
	// Summary is one line for people.
	Summary string `json:"summary"`

	// program adds the preset's translation rules to the ruleset. It runs
	// after the common filter rules exist.
	program func(rs *ruleset, p params)
}

var presets = map[string]Preset{}

func registerPreset(p Preset) { register(presets, "preset", p.Name, p) }

func lookupPreset(name string) (Preset, error) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownPreset, name, PresetNames())
	}
	return p, nil
}

// Presets returns the registered presets sorted by name.
func Presets() []Preset { return byName(presets) }

// PresetNames returns the registered preset names sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(presets)) }

// register adds v to a registry (presets, ALG modes) under its name; a
// second one of the same name is a programming error, caught at init.
func register[V any](registry map[string]V, kind, name string, v V) {
	if _, dup := registry[name]; dup {
		panic("natrouter: duplicate " + kind + " " + name)
	}
	registry[name] = v
}

// byName is a registry's values (presets, ALG modes: keyed by their name)
// in the order of their names.
func byName[V any](registry map[string]V) []V {
	out := make([]V, 0, len(registry))
	for _, name := range slices.Sorted(maps.Keys(registry)) {
		out = append(out, registry[name])
	}
	return out
}
