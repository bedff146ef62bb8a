package registrar

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestDomainChecks(t *testing.T) {
	cfg := baseConfig(t, newClock())
	cfg.Aliases = []string{"10.0.0.20", "127.0.0.1:5060"}
	r := newRegistrar(t, cfg)
	tests := []struct {
		name string
		ruri string
		to   string
		code int
	}{
		{"domain", "sip:siplab.test", "sip:alice@siplab.test", 200},
		{"domain, upper case", "sip:SIPLAB.TEST", "sip:alice@Siplab.Test", 200},
		{"alias ip", "sip:10.0.0.20", "sip:alice@10.0.0.20", 200},
		{"alias ip any port", "sip:10.0.0.20:5080", "sip:alice@siplab.test", 200},
		{"alias ip:port", "sip:127.0.0.1:5060", "sip:alice@siplab.test", 200},
		{"alias ip:port wrong port", "sip:127.0.0.1:5070", "sip:alice@siplab.test", 404},
		{"foreign request-uri", "sip:example.com", "sip:alice@siplab.test", 404},
		{"foreign AOR", "sip:siplab.test", "sip:alice@example.com", 404},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func(auth string) *sip.Request {
				raw := "REGISTER " + tt.ruri + " SIP/2.0\n" +
					"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-d" + string(rune('a'+i)) + "\n" +
					"From: <" + tt.to + ">;tag=t\nTo: <" + tt.to + ">\nCall-ID: dom-" + tt.name + "\nCSeq: 1 REGISTER\n" +
					"Contact: <sip:alice@192.0.2.10>\n"
				if auth != "" {
					raw += strings.Replace(auth, `uri="sip:siplab.test"`, `uri="`+tt.ruri+`"`, 1) + "\n"
				}
				return parseRequest(t, raw+"Content-Length: 0\n\n", "192.0.2.10:5060")
			}
			res := r.Handle(context.Background(), build(""))
			if res.StatusCode == sip.StatusUnauthorized {
				// The digest uri must be the Request-URI: recompute.
				res = r.Handle(context.Background(), build(answerURI(t, res, "alice", "secret", tt.ruri)))
			}
			if res.StatusCode != tt.code {
				t.Fatalf("%d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
		})
	}
}

// TestContactParameters: parameter names are case-insensitive, and the 200
// OK carries each binding's remaining time in place of what was asked.
func TestContactParameters(t *testing.T) {
	clk := newClock()
	r := newRegistrar(t, baseConfig(t, clk))
	res := registerDirect(t, r, "alice", "secret", `"Al" <sip:alice@192.0.2.1>;EXPIRES=120;Q=0.7;+sip.instance="<urn:uuid:1>"`, 1)
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	bs, _ := r.Lookup(context.Background(), "alice")
	if len(bs) != 1 || bs[0].Q != 700 || !bs[0].Expires.Equal(clk.Now().Add(120*time.Second)) {
		t.Fatalf("%+v", bs)
	}
	clk.Advance(20 * time.Second)
	res = registerDirect(t, r, "alice", "secret", "", 2) // query
	hs := res.GetHeaders("Contact")
	if len(hs) != 1 {
		t.Fatalf("%d contacts", len(hs))
	}
	v := hs[0].Value()
	if !strings.Contains(v, "expires=100") || strings.Contains(strings.ToLower(v), "expires=120") ||
		!strings.Contains(v, `"Al"`) || !strings.Contains(v, "+sip.instance") {
		t.Fatalf("Contact in 200: %s", v)
	}
	if res := registerDirect(t, r, "alice", "secret", "*", 3, "Contact: *", "Expires: 0"); res.StatusCode != 400 {
		t.Fatalf("two wildcards: %d, want 400", res.StatusCode)
	}
}

// TestTortureRegisters runs the RFC 4475 REGISTER messages through the
// registrar: each must be refused or challenged, none may bind anything.
func TestTortureRegisters(t *testing.T) {
	cfg := baseConfig(t, newClock())
	cfg.Domain = "example.com" // the torture messages' domain, so they get past the domain check
	r := newRegistrar(t, cfg)
	files, _ := filepath.Glob("../testdata/rfc4475/*/*.dat")
	if len(files) == 0 {
		t.Fatal("no torture messages under ../testdata/rfc4475")
	}
	seen := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		req := received(raw, "192.0.2.99:5060")
		if req == nil {
			continue // the parser drops it; nothing reaches the handler
		}
		res := r.Handle(context.Background(), req)
		if req.IsAck() {
			if res != nil {
				t.Errorf("%s: ACK answered", f)
			}
			continue
		}
		if res == nil || res.StatusCode < 400 && req.Method != sip.OPTIONS {
			t.Errorf("%s: %s answered %v", f, req.Method, res)
		}
		if req.Method == sip.REGISTER {
			seen++
			t.Logf("%s: %d %s", filepath.Base(f), res.StatusCode, res.Reason)
		}
	}
	if seen == 0 {
		t.Fatal("no REGISTER among the torture messages reached the handler")
	}
	if n := len(r.Bindings()); n != 0 {
		t.Fatalf("torture messages created %d bindings", n)
	}
}

// FuzzRegister feeds arbitrary bytes through sipgo's parser into the
// handler, once as received and once with valid credentials added so the
// fuzzer reaches the Contact/Path/expires code behind authentication.
func FuzzRegister(f *testing.F) {
	seeds := []string{
		"REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:alice@siplab.test>;tag=1\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: f1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.1>;expires=60;q=0.5\r\nExpires: 30\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\nFrom: <sip:alice@siplab.test>;tag=1\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: f2\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK3\r\nFrom: <sip:alice@siplab.test>;tag=1\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: f3\r\nCSeq: 3 REGISTER\r\nPath: <sip:127.0.0.1;lr;received=[::1]:5060;rtransport=tcp>, <sip:x;lr>\r\nSupported: path\r\nContact: \"A\" <sip:alice@[::1]:5060;transport=tcp>, <sip:alice@h>;expires=0\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK4\r\nFrom: <sip:alice@siplab.test>;tag=1\r\nTo: <sip:alice@siplab.test>\r\nCall-ID: f4\r\nCSeq: 4 REGISTER\r\nAuthorization: Digest username=\"alice\", realm=\"siplab.test\", nonce=\"x\", uri=\"sip:siplab.test\", response=\"0\"\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK5\r\nFrom: <sip:a@siplab.test>;tag=1\r\nTo: <sip:a@siplab.test>\r\nCall-ID: f5\r\nCSeq: 5 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cfg := baseConfig(f, newClock())
	cfg.DataDir = f.TempDir()
	cfg.TrustedProxies = nil
	r, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		req := received(data, "127.0.0.1:5060")
		if req == nil {
			return
		}
		res := r.Handle(context.Background(), req)
		if res == nil && !req.IsAck() {
			t.Fatal("no response")
		}
		if req.Method != sip.REGISTER || res == nil || res.StatusCode != sip.StatusUnauthorized {
			return
		}
		req.RemoveHeader("Authorization")
		req.AppendHeader(sip.NewHeader("Authorization", strings.TrimPrefix(answerURI(t, res, "alice", "secret", req.Recipient.String()), "Authorization: ")))
		if res := r.Handle(context.Background(), req); res == nil {
			t.Fatal("no response with credentials")
		}
	})
}
