package guard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/internal/ctl"
)

func TestUnblockHandler(t *testing.T) {
	blocked := netip.MustParseAddr("198.51.100.7")
	var asked []netip.Addr
	h := UnblockHandler("sbc", func(ip netip.Addr) bool {
		asked = append(asked, ip)
		return ip == blocked
	})
	for _, tc := range []struct {
		body     string
		code     int
		want     ctl.UnblockResult
		wantText string
	}{
		{`{"source":"198.51.100.7"}`, http.StatusOK, ctl.UnblockResult{Source: "198.51.100.7", Unblocked: true}, ""},
		{`{"source":" 198.51.100.8 "}`, http.StatusOK, ctl.UnblockResult{Source: "198.51.100.8"}, ""},
		{`{"source":"example.com"}`, http.StatusBadRequest, ctl.UnblockResult{}, `sbc: unblock: \"example.com\" is not an IP address`},
		{`{"source":`, http.StatusBadRequest, ctl.UnblockResult{}, ""},
	} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodPost, "/unblock", strings.NewReader(tc.body)))
		if rec.Code != tc.code {
			t.Errorf("%s: code %d, want %d (%s)", tc.body, rec.Code, tc.code, rec.Body)
			continue
		}
		if tc.code != http.StatusOK {
			if !strings.Contains(rec.Body.String(), tc.wantText) {
				t.Errorf("%s: body %s, want %s", tc.body, rec.Body, tc.wantText)
			}
			continue
		}
		var got ctl.UnblockResult
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.body, got, err, tc.want)
		}
	}
	if len(asked) != 2 {
		t.Errorf("unblock called for %v, want only the two addresses", asked)
	}
}
