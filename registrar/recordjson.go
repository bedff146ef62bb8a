package registrar

import (
	"github.com/siplab/siplab/sip/location"
)

// appendRecordJSON appends rec as encoding/json would write it (without
// HTML escaping, no trailing newline), byte for byte, without reflection
// (location.AppendBindingJSON; recordjson_test.go checks it): every
// REGISTER writes one.
func appendRecordJSON(b []byte, rec *record) ([]byte, error) {
	b = append(b, `{"aor":`...)
	b = location.AppendJSONString(b, rec.AOR)
	if rec.Clear {
		b = append(b, `,"clear":true`...)
	}
	if len(rec.Del) > 0 {
		b = append(b, `,"del":[`...)
		for i, d := range rec.Del {
			if i > 0 {
				b = append(b, ',')
			}
			b = location.AppendJSONString(b, d)
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
			if b, err = location.AppendBindingJSON(b, &rec.Set[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}
