package sipcheck_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipcheck"
)

// tortureDir holds the byte-exact RFC 4475 messages.
const tortureDir = "../../testdata/rfc4475"

// TestTorture pins what every daemon does with each RFC 4475 message: either
// sipgo's parser drops it ("parse"), or sipcheck refuses it with the code
// given, or (code 0) it is valid and passes.
func TestTorture(t *testing.T) {
	tests := []struct {
		file string
		uas  int // expected code as UAS; -1 = parser drops it; 0 = passes
		prx  int // expected code as proxy
	}{
		{"valid/wsinv.dat", 0, 0},
		{"valid/intmeth.dat", 0, 0},
		{"valid/esc01.dat", 0, 0},
		{"valid/escnull.dat", 0, 0},
		{"valid/esc02.dat", 0, 0},
		{"valid/lwsdisp.dat", 0, 0},
		{"valid/longreq.dat", 0, 0},
		{"valid/dblreq.dat", 0, 0},
		{"valid/semiuri.dat", 0, 0},
		{"valid/transports.dat", 0, 0},
		{"valid/mpart01.dat", 415, 0}, // multipart MESSAGE body: a phone only reads SDP
		{"invalid/badinv01.dat", -1, -1},
		{"invalid/clerr.dat", -1, -1},
		{"invalid/ncl.dat", -1, -1},
		{"invalid/scalar02.dat", -1, -1},
		{"invalid/quotbal.dat", -1, -1},
		{"invalid/ltgtruri.dat", -1, -1},
		{"invalid/lwsruri.dat", -1, -1},
		{"invalid/lwsstart.dat", -1, -1},
		{"invalid/trws.dat", -1, -1},
		{"invalid/escruri.dat", 400, 400},
		{"invalid/baddate.dat", 400, 400},
		{"invalid/regbadct.dat", 400, 400},
		{"invalid/badaspec.dat", -1, -1},
		{"invalid/baddn.dat", -1, -1},
		{"invalid/badvers.dat", 505, 505},
		{"invalid/mismatch01.dat", 400, 400},
		{"invalid/mismatch02.dat", 400, 400},
		{"invalid/badbranch.dat", 400, 400},
		{"invalid/insuf.dat", 400, 400},
		{"invalid/unkscm.dat", 416, 416},
		{"invalid/novelsc.dat", -1, -1},
		{"invalid/unksm2.dat", 416, 416},
		{"invalid/bext01.dat", 420, 420},
		{"invalid/invut.dat", 415, 0}, // a proxy forwards bodies it cannot read
		{"invalid/multi01.dat", 400, 400},
		{"invalid/mcl01.dat", 400, 400},
		{"invalid/zeromf.dat", 483, 483},
		{"invalid/cparam01.dat", 0, 0}, // valid syntax: the parameter belongs to the header
		{"invalid/cparam02.dat", 0, 0}, // likewise; the registrar judges the domain
		{"invalid/regaut01.dat", 0, 0}, // unknown auth scheme: the registrar challenges
		{"invalid/regescrt.dat", 400, 400},
		{"invalid/sdp01.dat", 406, 0},
		{"invalid/inv2543.dat", 0, 0}, // RFC 2543 peer: accepted, matched the old way
	}
	p := sip.NewParser()
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			seen[tt.file] = true
			raw, err := os.ReadFile(filepath.Join(tortureDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			msg, err := p.ParseSIP(raw)
			if tt.uas == -1 {
				if err == nil {
					t.Fatalf("parser accepted %s; expected it to be dropped", tt.file)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			req, ok := msg.(*sip.Request)
			if !ok {
				t.Fatalf("%s is not a request", tt.file)
			}
			for _, c := range []struct {
				role sipcheck.Role
				want int
			}{{sipcheck.UAS, tt.uas}, {sipcheck.Proxy, tt.prx}} {
				got := 0
				if prob := sipcheck.Request(req, sipcheck.Options{Role: c.role}); prob != nil {
					got = prob.Code
					if res := sipcheck.Respond(req, prob); res == nil || res.StatusCode != prob.Code {
						t.Errorf("Respond built %v for %v", res, prob)
					}
				}
				if got != c.want {
					t.Errorf("role %d: got %d, want %d", c.role, got, c.want)
				}
			}
		})
	}
	// Every request in the corpus must be pinned above.
	files, _ := filepath.Glob(filepath.Join(tortureDir, "*", "*.dat"))
	for _, f := range files {
		rel, _ := filepath.Rel(tortureDir, f)
		if !seen[rel] && filepath.Dir(rel) != "extra" && !isResponse(t, f) {
			t.Errorf("%s is not covered", rel)
		}
	}
}

func isResponse(t *testing.T, f string) bool {
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return len(raw) > 4 && string(raw[:4]) == "SIP/"
}

func TestRequireSupported(t *testing.T) {
	raw := "OPTIONS sip:u@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKabc\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:u@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nRequire: 100rel, timer\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	tests := []struct {
		supported []string
		want      []string
	}{
		{nil, []string{"100rel", "timer"}},
		{[]string{"100REL"}, []string{"timer"}},
		{[]string{"100rel", "timer"}, nil},
	}
	for _, tt := range tests {
		prob := sipcheck.Request(req, sipcheck.Options{Supported: tt.supported})
		var got []string
		if prob != nil {
			got = prob.Unsupported
		}
		if len(got) != len(tt.want) {
			t.Errorf("supported %v: unsupported %v, want %v", tt.supported, got, tt.want)
		}
	}
}
