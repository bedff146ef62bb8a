package registrar

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/siplab/siplab/sip/location"
)

// appendRecordJSON appends rec as encoding/json would write it (without
// HTML escaping, no trailing newline), byte for byte, without reflection:
// every REGISTER writes one, and the reflective encoder was a tenth of
// the registrar's CPU. Strings that need escaping (control characters,
// non-ASCII) and times json refuses go through encoding/json itself, so
// the output stays identical (recordjson_test.go checks it).
func appendRecordJSON(b []byte, rec *record) ([]byte, error) {
	b = append(b, `{"aor":`...)
	b = appendJSONString(b, rec.AOR)
	if rec.Clear {
		b = append(b, `,"clear":true`...)
	}
	if len(rec.Del) > 0 {
		b = append(b, `,"del":[`...)
		for i, d := range rec.Del {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, d)
		}
		b = append(b, ']')
	}
	if len(rec.Set) > 0 {
		b = append(b, `,"set":[`...)
		for i := range rec.Set {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendBindingJSON(b, &rec.Set[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func appendBindingJSON(b []byte, bd *location.Binding) ([]byte, error) {
	b = append(b, `{"aor":`...)
	b = appendJSONString(b, bd.AOR)
	b = append(b, `,"contact":`...)
	b = appendJSONString(b, bd.Contact)
	b = append(b, `,"contact_uri":`...)
	b = appendJSONString(b, bd.ContactURI)
	b = append(b, `,"source":`...)
	var src [64]byte
	b = appendJSONString(b, string(bd.Source.AppendTo(src[:0])))
	b = append(b, `,"transport":`...)
	b = appendJSONString(b, bd.Transport)
	if len(bd.Path) > 0 {
		b = append(b, `,"path":[`...)
		for i, p := range bd.Path {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p)
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
	b = appendJSONString(b, bd.CallID)
	b = append(b, `,"cseq":`...)
	b = strconv.AppendUint(b, uint64(bd.CSeq), 10)
	if bd.UserAgent != "" {
		b = append(b, `,"user_agent":`...)
		b = appendJSONString(b, bd.UserAgent)
	}
	b = append(b, `,"updated":`...)
	if b, err = appendJSONTime(b, bd.Updated); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendJSONString quotes s; printable ASCII other than '"' and '\\' is
// written as it is, anything else by encoding/json.
func appendJSONString(b []byte, s string) []byte {
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
