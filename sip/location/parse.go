package location

import (
	"strconv"
)

// ParseChangeJSON reads one watch-stream line (no newline) into c, as
// json.Unmarshal would, without reflection: the proxy reads a line per
// REGISTER the registrar takes, and encoding/json's decoder was most of
// its CPU for each. It reads the form AppendChangeJSON writes — known keys
// in any order, no whitespace, strings of printable ASCII without escapes,
// unsigned integers — and reports false for anything else, which the
// caller then gives to encoding/json (so every valid line is read, fast or
// not, with the same result). Times and addresses go through their own
// UnmarshalJSON/UnmarshalText, as encoding/json does.
func ParseChangeJSON(line []byte, c *Change) bool {
	p := jsonParser{b: line}
	*c = Change{}
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "version":
			return p.uint(&c.Version, 64)
		case "snapshot":
			return p.bool(&c.Snapshot)
		case "aor":
			return p.str(&c.AOR)
		case "bindings":
			c.Bindings = []Binding{}
			return p.array(func() bool {
				c.Bindings = append(c.Bindings, Binding{})
				return p.binding(&c.Bindings[len(c.Bindings)-1])
			})
		}
		return false
	})
	return ok && p.i == len(p.b)
}

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *jsonParser) eat(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// object reads {"key":value,...}, value by field.
func (p *jsonParser) object(field func(key []byte) bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	for {
		k, ok := p.raw()
		if !ok || !p.eat(':') || !field(k) {
			return false
		}
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// array reads [elem,...] (not null).
func (p *jsonParser) array(elem func() bool) bool {
	if !p.eat('[') {
		return false
	}
	if p.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.eat(']') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// raw is a string's bytes between the quotes, if printable ASCII without
// escapes (then they are its value).
func (p *jsonParser) raw() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

func (p *jsonParser) str(dst *string) bool {
	s, ok := p.raw()
	if ok {
		*dst = string(s)
	}
	return ok
}

// quoted returns a string token with its quotes, for UnmarshalJSON.
func (p *jsonParser) quoted() ([]byte, bool) {
	start := p.i
	if _, ok := p.raw(); !ok {
		return nil, false
	}
	return p.b[start:p.i], true
}

func (p *jsonParser) uint(dst *uint64, bits int) bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) {
		return false // none, or a leading zero JSON forbids
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return false
	}
	n, err := strconv.ParseUint(string(digits), 10, bits)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func (p *jsonParser) bool(dst *bool) bool {
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		p.i += 4
		*dst = true
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		p.i += 5
		*dst = false
	default:
		return false
	}
	return true
}

func (p *jsonParser) binding(b *Binding) bool {
	return p.object(func(key []byte) bool {
		var n uint64 // q and cseq
		switch string(key) {
		case "aor":
			return p.str(&b.AOR)
		case "contact":
			return p.str(&b.Contact)
		case "contact_uri":
			return p.str(&b.ContactURI)
		case "source":
			q, ok := p.quoted()
			return ok && b.Source.UnmarshalText(q[1:len(q)-1]) == nil
		case "transport":
			return p.str(&b.Transport)
		case "path":
			b.Path = []string{}
			return p.array(func() bool {
				var s string
				if !p.str(&s) {
					return false
				}
				b.Path = append(b.Path, s)
				return true
			})
		case "expires":
			q, ok := p.quoted()
			return ok && b.Expires.UnmarshalJSON(q) == nil
		case "q":
			return p.uint(&n, 31) && setInt(&b.Q, n)
		case "call_id":
			return p.str(&b.CallID)
		case "cseq":
			return p.uint(&n, 32) && setUint32(&b.CSeq, n)
		case "user_agent":
			return p.str(&b.UserAgent)
		case "updated":
			q, ok := p.quoted()
			return ok && b.Updated.UnmarshalJSON(q) == nil
		}
		return false
	})
}

func setInt(dst *int, n uint64) bool { *dst = int(n); return true }

func setUint32(dst *uint32, n uint64) bool { *dst = uint32(n); return true }
