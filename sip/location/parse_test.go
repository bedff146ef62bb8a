package location

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func parseSamples() [][]byte {
	at := time.Date(2026, 12, 7, 20, 21, 22, 123456789, time.UTC)
	full := Binding{
		AOR: "sip:alice@siplab.test", Contact: `<sip:alice@192.168.1.50:5060;transport=udp>;q=0.5`,
		ContactURI: "sip:alice@192.168.1.50:5060;transport=udp", Source: netip.MustParseAddrPort("203.0.113.7:41234"),
		Transport: "udp", Path: []string{"sip:127.0.0.221;lr;received=203.0.113.7:41234", "sip:edge&<x>"},
		Expires: at.Add(time.Hour), Q: 500, CallID: "abc@host", CSeq: 4294967295, UserAgent: "Zoiper & <Co>", Updated: at,
	}
	plain := Binding{AOR: "sip:bob@siplab.test", Contact: "<sip:bob@[2001:db8::1]>", ContactURI: "sip:bob@[2001:db8::1]",
		Source: netip.MustParseAddrPort("[2001:db8::2]:5060"), Transport: "tls", Expires: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -(3*3600+30*60))), CallID: "c", Updated: at}
	odd := plain
	odd.Contact, odd.CallID = "\"B\\\"ob\tÜ\u2028\" <sip:bob@[2001:db8::1]>", "ctl\x01\x7f\xff"
	var out [][]byte
	for _, c := range []Change{
		{Version: 7, AOR: "sip:alice@siplab.test", Bindings: []Binding{full, plain}},
		{Version: 8, AOR: "sip:alice@siplab.test"},
		{Version: 9, Snapshot: true, Bindings: []Binding{plain, {}}},
		{Version: 10},
		{Version: 11, AOR: "sip:bob@siplab.test", Bindings: []Binding{odd}},
	} {
		b, err := AppendChangeJSON(nil, &c)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return append(out,
		[]byte(`{"version":1,"bindings":[],"aor":"x","snapshot":false}`),
		[]byte(`{"version":01}`), []byte(`{"version":1.5}`), []byte(`{"version":-1}`), []byte(`{"version":18446744073709551616}`),
		[]byte(`{"Version":3}`), []byte(`{"version":3,"extra":1}`), []byte(`{"version":3} `), []byte(`{ "version":3}`),
		[]byte(`{"version":3,"bindings":null}`), []byte(`{"version":3,"bindings":[{"path":[]}]}`),
		[]byte(`{"version":3,"bindings":[{"cseq":4294967296}]}`), []byte(`{"version":3,"bindings":[{"q":-5}]}`),
		[]byte(`{"version":3,"bindings":[{"source":"nope"}]}`), []byte(`{"version":3,"bindings":[{"expires":"2026-13-01T00:00:00Z"}]}`),
		[]byte(`{"version":3,"aor":"a\u0062"}`), []byte(``), []byte(`{}`), []byte(`{"version":3,}`))
}

// Whatever ParseChangeJSON accepts it reads exactly as json.Unmarshal does,
// and the lines the registrar writes (ASCII) it accepts: the samples,
// and random damage to them.
func TestParseChangeJSONAgreesWithEncodingJSON(t *testing.T) {
	check := func(line []byte) bool {
		t.Helper()
		var fast, slow Change
		ok := ParseChangeJSON(line, &fast)
		err := json.Unmarshal(line, &slow)
		if ok && err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %s", err, line)
		}
		if ok && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nfast %+v\nslow %+v", line, fast, slow)
		}
		return ok
	}
	samples := parseSamples()
	for i, line := range samples[:4] {
		if !check(line) {
			t.Errorf("sample %d not read fast: %s", i, line)
		}
	}
	for _, line := range samples[4:] {
		check(line)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		line := append([]byte(nil), samples[rng.IntN(len(samples))]...)
		if len(line) == 0 {
			continue
		}
		switch rng.IntN(3) {
		case 0:
			line[rng.IntN(len(line))] = byte(rng.IntN(128))
		case 1:
			line = line[:rng.IntN(len(line))]
		default:
			i := rng.IntN(len(line))
			line = append(line[:i], line[i+1:]...)
		}
		check(line)
	}
}

func FuzzParseChangeJSON(f *testing.F) {
	for _, s := range parseSamples() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast, slow Change
		if !ParseChangeJSON(line, &fast) {
			return
		}
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, line)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q\nfast %+v\nslow %+v", line, fast, slow)
		}
	})
}
