package sipdialog

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// HasOptionTag reports whether a Supported/Require/Proxy-Require-style
// header of m lists tag (RFC 3261 §20.32: a comma list of option tags,
// compared case-insensitively), in any of its instances.
func HasOptionTag(m interface{ GetHeaders(string) []sip.Header }, header, tag string) bool {
	for _, h := range m.GetHeaders(header) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}
