package location

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

// AppendChangeJSON writes what encoding/json writes (no HTML escaping),
// byte for byte: watch streams and journals read the same as before, by
// any JSON reader.
func TestChangeJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 20, 21, 22, 123456789, time.UTC)
	zoned := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -(3*3600+30*60)))
	full := Binding{
		AOR: "sip:alice@siplab.test", Contact: `"Alice" <sip:alice@192.168.1.50:5060;transport=udp>;q=0.5;+sip.instance="<urn:uuid:1>"`,
		ContactURI: "sip:alice@192.168.1.50:5060;transport=udp", Source: netip.MustParseAddrPort("203.0.113.7:41234"),
		Transport: "udp", Path: []string{"sip:127.0.0.221;lr;received=203.0.113.7:41234", "sip:edge&<x>"},
		Expires: at.Add(time.Hour), Q: 500, CallID: "abc@host", CSeq: 4294967295, UserAgent: "Zoiper & <Co>", Updated: at,
	}
	odd := Binding{
		AOR: "sip:bob@siplab.test", Contact: "\"B\\\"ob\tÜ\u2028\" <sip:bob@[2001:db8::1]>", ContactURI: "sip:bob@[2001:db8::1]",
		Source: netip.MustParseAddrPort("[fe80::1%eth0]:5060"), Transport: "tls",
		Expires: zoned, CallID: "ctl\x01\x7f\xff", Updated: zoned,
	}
	for name, c := range map[string]Change{
		"change":    {Version: 7, AOR: "sip:alice@siplab.test", Bindings: []Binding{full, odd}},
		"removed":   {Version: 8, AOR: "sip:alice@siplab.test"},
		"snapshot":  {Version: 9, Snapshot: true, Bindings: []Binding{odd, {}}},
		"heartbeat": {Version: 10},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&c); err != nil {
			t.Fatal(err)
		}
		got, err := AppendChangeJSON(nil, &c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
	// A time encoding/json refuses is refused here too.
	bad := Change{Bindings: []Binding{{Expires: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := AppendChangeJSON(nil, &bad); err == nil {
		t.Error("year 10000 encoded")
	}
	if _, err := json.Marshal(&bad); err == nil {
		t.Error("encoding/json encoded year 10000: the test's premise is wrong")
	}
}
