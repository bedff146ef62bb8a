package registrar

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// The hand-written journal encoder writes what encoding/json writes (no
// HTML escaping), byte for byte, so journals stay what they were and any
// JSON reader, replay included, reads them alike.
func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 20, 21, 22, 123456789, time.UTC)
	zoned := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -(3*3600+30*60)))
	full := location.Binding{
		AOR: "sip:alice@siplab.test", Contact: `"Alice" <sip:alice@192.168.1.50:5060;transport=udp>;q=0.5;+sip.instance="<urn:uuid:1>"`,
		ContactURI: "sip:alice@192.168.1.50:5060;transport=udp", Source: netip.MustParseAddrPort("203.0.113.7:41234"),
		Transport: "udp", Path: []string{"sip:127.0.0.221;lr;received=203.0.113.7:41234", "sip:edge&<x>"},
		Expires: at.Add(time.Hour), Q: 500, CallID: "abc@host", CSeq: 4294967295, UserAgent: "Zoiper & <Co>", Updated: at,
	}
	odd := location.Binding{
		AOR: "sip:bob@siplab.test", Contact: "\"B\\\"ob\tÜ\u2028\" <sip:bob@[2001:db8::1]>", ContactURI: "sip:bob@[2001:db8::1]",
		Source: netip.MustParseAddrPort("[fe80::1%eth0]:5060"), Transport: "tls",
		Expires: zoned, CallID: "ctl\x01\x7f\xff", Updated: zoned,
	}
	for name, rec := range map[string]record{
		"set":   {AOR: "sip:alice@siplab.test", Set: []location.Binding{full}},
		"odd":   {AOR: "sip:bob@siplab.test", Set: []location.Binding{odd, {AOR: "sip:bob@siplab.test"}}},
		"clear": {AOR: "sip:carol@siplab.test", Clear: true},
		"del":   {AOR: "sip:dave@siplab.test", Del: []string{"sip:dave@10.0.0.1", "sip:\"dave\"@x"}},
		"all":   {AOR: "sip:eve@siplab.test", Clear: true, Del: []string{"sip:e@1"}, Set: []location.Binding{full, odd}},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&rec); err != nil {
			t.Fatal(err)
		}
		got, err := appendRecordJSON(nil, &rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
	// A time encoding/json refuses is refused here too.
	bad := record{AOR: "sip:x@siplab.test", Set: []location.Binding{{Expires: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := appendRecordJSON(nil, &bad); err == nil {
		t.Error("year 10000 encoded")
	}
	if _, err := json.Marshal(&bad); err == nil {
		t.Error("encoding/json encoded year 10000: the test's premise is wrong")
	}
}
