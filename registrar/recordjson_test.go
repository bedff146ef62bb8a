package registrar

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// The journal's records are written as encoding/json writes them (no
// HTML escaping), byte for byte, so journals stay what they were; the
// bindings' own encoding is checked in sip/location.
func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 20, 21, 22, 123456789, time.UTC)
	b := location.Binding{AOR: "sip:alice@siplab.test", Contact: "<sip:alice@192.168.1.50>", ContactURI: "sip:alice@192.168.1.50",
		Source: netip.MustParseAddrPort("203.0.113.7:41234"), Transport: "udp", Expires: at, CallID: "c", CSeq: 2, Updated: at}
	for name, rec := range map[string]record{
		"set":   {AOR: "sip:alice@siplab.test", Set: []location.Binding{b, b}},
		"clear": {AOR: "sip:carol@siplab.test", Clear: true},
		"del":   {AOR: "sip:dave@siplab.test", Del: []string{"sip:dave@10.0.0.1", "sip:\"dave\"@x\n"}},
		"all":   {AOR: "sip:eve@siplab.test", Clear: true, Del: []string{"sip:e@1"}, Set: []location.Binding{b}},
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
	bad := record{AOR: "sip:x@siplab.test", Set: []location.Binding{{Expires: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := encodeRecord(nil, &bad); err == nil {
		t.Error("a binding encoding/json refuses was journaled")
	}
}
