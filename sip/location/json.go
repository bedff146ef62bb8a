package location

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON of bindings and changes, written without reflection: the
// registrar writes a binding into its journal and onto every watch
// stream for each REGISTER, thousands a second, and encoding/json's
// reflective encoder was a tenth of its CPU. The output is what
// encoding/json writes without HTML escaping, byte for byte (json_test.go
// checks it): strings that need escaping (control characters, non-ASCII)
// and times json refuses go through encoding/json itself.

// AppendChangeJSON appends c as encoding/json would (no newline).
func AppendChangeJSON(b []byte, c *Change) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, c.Version, 10)
	if c.Snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	if c.AOR != "" {
		b = append(b, `,"aor":`...)
		b = AppendJSONString(b, c.AOR)
	}
	if len(c.Bindings) > 0 {
		b = append(b, `,"bindings":[`...)
		for i := range c.Bindings {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = AppendBindingJSON(b, &c.Bindings[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// AppendBindingJSON appends bd as encoding/json would.
func AppendBindingJSON(b []byte, bd *Binding) ([]byte, error) {
	b = append(b, `{"aor":`...)
	b = AppendJSONString(b, bd.AOR)
	b = append(b, `,"contact":`...)
	b = AppendJSONString(b, bd.Contact)
	b = append(b, `,"contact_uri":`...)
	b = AppendJSONString(b, bd.ContactURI)
	b = append(b, `,"source":`...)
	var src [64]byte
	b = AppendJSONString(b, string(bd.Source.AppendTo(src[:0])))
	b = append(b, `,"transport":`...)
	b = AppendJSONString(b, bd.Transport)
	if len(bd.Path) > 0 {
		b = append(b, `,"path":[`...)
		for i, p := range bd.Path {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"expires":`...)
	var err error
	if b, err = appendJSONTime(b, bd.Expires); err != nil {
		return b, err
	}
	if bd.Q != 0 {
		b = append(b, `,"q":`...)
		b = strconv.AppendInt(b, int64(bd.Q), 10)
	}
	b = append(b, `,"call_id":`...)
	b = AppendJSONString(b, bd.CallID)
	b = append(b, `,"cseq":`...)
	b = strconv.AppendUint(b, uint64(bd.CSeq), 10)
	if bd.UserAgent != "" {
		b = append(b, `,"user_agent":`...)
		b = AppendJSONString(b, bd.UserAgent)
	}
	b = append(b, `,"updated":`...)
	if b, err = appendJSONTime(b, bd.Updated); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// AppendJSONString quotes s as encoding/json does (no HTML escaping); printable ASCII other than '"' and '\\' is
// written as it is, anything else by encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return appendJSONSlow(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONSlow(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// appendJSONTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds),
// which fails for years outside 0-9999.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		_, err := t.MarshalJSON()
		return b, err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
