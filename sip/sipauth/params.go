package sipauth

import (
	"errors"
	"fmt"
	"strings"
)

// credentials are the parameters of one Digest Authorization header we care
// about. Unknown parameters are ignored (RFC 7616 §3.4 lets clients add
// extensions); a parameter given twice is an error, because two different
// values for "response" or "nonce" can only be an attack or a broken client.
type credentials struct {
	username, realm, nonce, uri, response string
	algorithm, cnonce, opaque, qop, nc    string
}

var (
	errNotDigest = errors.New("not a Digest credential")
	errSyntax    = errors.New("malformed Digest parameters")
)

// hasDigestScheme reports whether v starts with the Digest scheme token.
func hasDigestScheme(v string) bool {
	return len(v) > 6 && strings.EqualFold(v[:6], "digest") && isLWS(v[6])
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// parseCredentials parses `Digest k=v, k="v", ...` (RFC 2617 §3.2.2,
// RFC 3261 §25 digest-response). It is written for the server side: strict
// about structure, tolerant of LWS, and allocation-free for values without
// escapes.
func parseCredentials(v string) (credentials, error) {
	var c credentials
	if !hasDigestScheme(v) {
		return c, errNotDigest
	}
	s := v[6:]
	seen := 0
	for first := true; ; first = false {
		s = trimLWS(s)
		if s == "" {
			if first {
				return c, fmt.Errorf("%w: no parameters", errSyntax)
			}
			return c, nil
		}
		if !first {
			if s[0] != ',' {
				return c, fmt.Errorf("%w: expected ',' at %q", errSyntax, clip(s))
			}
			s = trimLWS(s[1:])
		}
		i := tokenLen(s)
		if i == 0 {
			return c, fmt.Errorf("%w: expected parameter name at %q", errSyntax, clip(s))
		}
		key := s[:i]
		s = trimLWS(s[i:])
		if s == "" || s[0] != '=' {
			return c, fmt.Errorf("%w: parameter %q has no value", errSyntax, key)
		}
		s = trimLWS(s[1:])
		var val string
		if s != "" && s[0] == '"' {
			var err error
			val, s, err = quoted(s)
			if err != nil {
				return c, fmt.Errorf("%w: parameter %q: %v", errSyntax, key, err)
			}
		} else {
			j := tokenLen(s)
			if j == 0 {
				return c, fmt.Errorf("%w: parameter %q has an empty value", errSyntax, key)
			}
			val, s = s[:j], s[j:]
		}
		p := paramIndex(key)
		if p < 0 {
			continue
		}
		if seen&(1<<p) != 0 {
			return c, fmt.Errorf("%w: parameter %q given twice", errSyntax, key)
		}
		seen |= 1 << p
		*c.fields()[p] = val
	}
}

// paramNames are the parameters credentials keeps, in the order of fields.
var paramNames = [...]string{"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc"}

// fields are c's values, in the order of paramNames.
func (c *credentials) fields() [len(paramNames)]*string {
	return [...]*string{&c.username, &c.realm, &c.nonce, &c.uri, &c.response, &c.algorithm, &c.cnonce, &c.opaque, &c.qop, &c.nc}
}

// paramIndex is key's place in paramNames (names are case-insensitive),
// -1 for a parameter credentials does not keep.
func paramIndex(key string) int {
	for i, n := range paramNames {
		if strings.EqualFold(key, n) {
			return i
		}
	}
	return -1
}

// tokenLen is the length of the token at the start of s.
func tokenLen(s string) int {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return i
}

func trimLWS(s string) string {
	for s != "" && isLWS(s[0]) {
		s = s[1:]
	}
	return s
}

// quoted reads a quoted-string at the start of s and returns its unescaped
// value and the rest of s.
func quoted(s string) (val, rest string, err error) {
	esc := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			esc = true
			i++
		case '"':
			if !esc {
				return s[1:i], s[i+1:], nil
			}
			var b strings.Builder
			for j := 1; j < i; j++ {
				if s[j] == '\\' {
					j++
				}
				b.WriteByte(s[j])
			}
			return b.String(), s[i+1:], nil
		}
	}
	return "", "", errors.New("unterminated quoted string")
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}
