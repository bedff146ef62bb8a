package guard

import "net/netip"

// Behind is the failed-auth policy of a daemon behind the edge (the
// registrar, the proxy): c, or AuthOnly when c is nil, copied so the
// caller's Config is never edited, with trusted (the daemon's own trusted
// peers) added to its Trunks, and validated.
func Behind(c *Config, trusted ...[]netip.Prefix) (*Config, error) {
	if c == nil {
		g := AuthOnly()
		c = &g
	}
	g := *c
	g.Trunks = append([]netip.Prefix(nil), g.Trunks...)
	for _, t := range trusted {
		g.Trunks = append(g.Trunks, t...)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}
