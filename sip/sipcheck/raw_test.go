package sipcheck

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func corpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "rfc4475", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var src = netip.MustParseAddrPort("127.0.0.9:40000")

// The messages sipgo's parser drops: each is answered from its raw lines
// with a status line in SIP/2.0, the status RFC 4475 asks for and a reason
// phrase naming the bad part, sent to the source IP and the Via's port.
func TestReceiverAnswersWhatSipgoDrops(t *testing.T) {
	r := NewReceiver()
	for _, tt := range []struct {
		file   string
		code   int
		reason string
		to     string
	}{
		{"invalid/clerr.dat", 400, "Content-Length Larger Than Message", "127.0.0.9:5060"},
		{"invalid/scalar02.dat", 400, "Malformed CSeq Header Field", "127.0.0.9:5060"},
		{"invalid/ltgtruri.dat", 400, "Request-URI in Angle Brackets", "127.0.0.9:5060"},
		{"invalid/trws.dat", 400, "Whitespace at End of Request-Line", "127.0.0.9:5060"},
		{"invalid/badaspec.dat", 400, "Malformed To Header Field", "127.0.0.9:5060"},
		{"invalid/baddn.dat", 400, "Malformed From Header Field", "127.0.0.9:5060"},
		{"invalid/novelsc.dat", 416, "Unsupported URI Scheme", "127.0.0.9:5060"},
		{"invalid/lwsruri.dat", 400, "Whitespace in Request-URI", "127.0.0.9:5060"},
		{"invalid/lwsstart.dat", 400, "Multiple Spaces in Request-Line", "127.0.0.9:5060"},
		{"invalid/ncl.dat", 400, "Malformed Content-Length", "127.0.0.9:5060"},
		{"invalid/quotbal.dat", 400, "Malformed To Header Field", "127.0.0.9:5050"},
		{"invalid/badinv01.dat", 400, "Malformed Via Header Field", "127.0.0.9:5060"},
		{"invalid/badvers.dat", 505, "Version Not Supported", "127.0.0.9:5060"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			v := r.Check(corpus(t, tt.file), src)
			if v.Pass != nil || v.Response == nil {
				t.Fatalf("passed %v, response %q", v.Pass != nil, v.Response)
			}
			// The response copies the request's headers as they came
			// (RFC 3261 §8.2.6.2), the malformed one included, so it is
			// read line by line here.
			res := string(v.Response)
			status, _, _ := strings.Cut(res, "\r\n")
			if want := fmt.Sprintf("SIP/2.0 %d %s", tt.code, tt.reason); status != want {
				t.Fatalf("status line %q, want %q", status, want)
			}
			if v.To.String() != tt.to {
				t.Errorf("sent to %s, want %s", v.To, tt.to)
			}
			for _, h := range []string{"\r\nVia: ", "\r\nFrom: ", "\r\nTo: ", "\r\nCall-ID: ", "\r\nCSeq: ", "\r\nWarning: 399 ", "\r\nContent-Length: 0\r\n\r\n"} {
				if !strings.Contains(res, h) {
					t.Errorf("response lacks %q:\n%s", strings.TrimSpace(h), res)
				}
			}
		})
	}
}

// What cannot be answered is dropped, and said so: a response, an ACK, a
// request without a usable Via.
func TestReceiverSilence(t *testing.T) {
	r := NewReceiver()
	for name, msg := range map[string]string{
		"response": string(corpus(t, "invalid/scalarlg.dat")),
		"ack":      "ACK <sip:a@b> SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9\r\nCall-ID: x\r\nCSeq: 1 ACK\r\n\r\n",
		"ack 7.0":  "ACK sip:a@b SIP/7.0\r\nVia: SIP/7.0/UDP 127.0.0.9\r\nCall-ID: x\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		"no via":   "OPTIONS <sip:a@b> SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
		"bad via":  "OPTIONS <sip:a@b> SIP/2.0\r\nVia: nonsense\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
		"garbage":  "\x00\x01hello",
	} {
		v := r.Check([]byte(msg), src)
		if v.Response != nil {
			t.Errorf("%s: answered %q", name, v.Response)
		}
		if name == "response" && v.Pass == nil {
			t.Errorf("a response must reach sipgo (it may match a transaction)")
		}
		if name == "ack 7.0" && v.Pass == nil {
			t.Errorf("a parsed ACK must reach sipgo (it ends a transaction)")
		}
		if name != "response" && name != "ack 7.0" && (v.Pass != nil || v.Detail == "") {
			t.Errorf("%s: passed=%v detail=%q, want a drop with a reason", name, v.Pass != nil, v.Detail)
		}
	}
}

// RFC 4475 §3.1.1.1 wsinv: "tag = x" is a From tag.
func TestParserTakesLWSAroundEquals(t *testing.T) {
	m, err := NewParser().ParseSIP(corpus(t, "valid/wsinv.dat"))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if tag, _ := req.From().Params.Get("tag"); tag != "98asjd8" {
		t.Fatalf("From tag %q (params %q)", tag, req.From().Params.String())
	}
	if strings.Contains(req.From().String(), ";;") {
		t.Errorf("empty parameter kept: %s", req.From())
	}
	if _, err := sip.ServerTxKeyMake(req); err != nil {
		t.Fatalf("no transaction key: %v", err)
	}
}

// RFC 4475 §3.4.1 inv2543: a branch and a Contact derived from the request,
// the same for a retransmission and for its CANCEL.
func TestRFC2543RequestGetsKeyAndContact(t *testing.T) {
	r := NewReceiver()
	raw := corpus(t, "invalid/inv2543.dat")
	v := r.Check(raw, src)
	if v.Pass == nil || v.Response != nil {
		t.Fatalf("refused: %s", v.Response)
	}
	m, err := NewParser().ParseSIP(v.Pass)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if _, err := sip.ServerTxKeyMake(req); err != nil {
		t.Fatalf("still no transaction key: %v", err)
	}
	if c := req.Contact(); c == nil || c.Address.String() != req.From().Address.String() {
		t.Fatalf("Contact %v, want the From URI", c)
	}
	again := r.Check(raw, src)
	branch := func(b []byte) string {
		m, _ := NewParser().ParseSIP(b)
		br, _ := m.(*sip.Request).Via().Params.Get("branch")
		return br
	}
	if branch(again.Pass) != branch(v.Pass) {
		t.Fatal("a retransmission gets another branch")
	}
	cancel := strings.Replace(strings.Replace(string(raw), "INVITE sip:", "CANCEL sip:", 1), "56 INVITE", "56 CANCEL", 1)
	cancel = cancel[:strings.Index(cancel, "Content-Type")] + "\r\n"
	if c := r.Check([]byte(cancel), src); branch(c.Pass) != branch(v.Pass) {
		t.Fatalf("its CANCEL gets branch %q, the INVITE %q", branch(c.Pass), branch(v.Pass))
	}
}

func TestFrame(t *testing.T) {
	r := NewReceiver()
	msg := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.9;branch=z9hG4bK1\r\nCall-ID: f\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello"
	for _, tt := range []struct {
		name   string
		buf    string
		length int
		code   int // of a refusal
	}{
		{"complete", msg + "OPTIONS", len(msg), 0},
		{"headers incomplete", msg[:40], 0, 0},
		{"no length", strings.Replace(msg, "Content-Length: 5\r\n", "", 1), 0, 400},
		{"two lengths", strings.Replace(msg, "Content-Length: 5\r\n", "Content-Length: 5\r\nl: 6\r\n", 1), 0, 400},
		{"negative", strings.Replace(msg, "Content-Length: 5", "Content-Length: -5", 1), 0, 400},
	} {
		f := r.Frame([]byte(tt.buf), src)
		if f.Length != tt.length {
			t.Errorf("%s: length %d, want %d", tt.name, f.Length, tt.length)
		}
		switch {
		case tt.code == 0 && f.Refusal != nil:
			t.Errorf("%s: refused %+v", tt.name, f.Refusal)
		case tt.code != 0 && (f.Refusal == nil || !strings.HasPrefix(string(f.Refusal.Response), "SIP/2.0 400 ")):
			t.Errorf("%s: refusal %+v, want a 400", tt.name, f.Refusal)
		}
	}
}

// A response to SIP/7.0 still speaks SIP/2.0, whichever path builds it.
func TestRespondSpeaksSIP20(t *testing.T) {
	m, err := sip.ParseMessage(corpus(t, "invalid/badvers.dat"))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	p := Request(req, Options{})
	if p == nil || p.Code != 505 {
		t.Fatalf("problem %v", p)
	}
	if res := Respond(req, p); !strings.HasPrefix(res.String(), "SIP/2.0 505 Version Not Supported\r\n") {
		t.Fatalf("status line %q", strings.SplitN(res.String(), "\r\n", 2)[0])
	}
}

// FuzzReceiver: whatever arrives, the receive path never panics; what it
// sends is a SIP/2.0 response ending its headers, what it passes on is the
// message (or the message with a derived branch/Contact), and framing
// never claims more than the buffer holds or less than its headers.
func FuzzReceiver(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "rfc4475", dir, "*.dat"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	r := NewReceiver()
	f.Fuzz(func(t *testing.T, data []byte) {
		v := r.Check(data, src)
		if v.Response != nil {
			if !strings.HasPrefix(string(v.Response), "SIP/2.0 ") || !strings.HasSuffix(string(v.Response), "\r\n\r\n") {
				t.Fatalf("response %q", v.Response)
			}
			if v.Pass != nil {
				t.Fatal("both answered and passed on")
			}
			if !v.To.IsValid() {
				t.Fatal("a response with nowhere to go")
			}
		}
		if v.Pass != nil && len(v.Pass) < len(data) {
			t.Fatalf("passed %d of %d bytes", len(v.Pass), len(data))
		}
		fr := r.Frame(data, src)
		if fr.Length != 0 && (fr.Length < strings.Index(string(data), "\r\n\r\n")+4 || fr.Refusal != nil) {
			t.Fatalf("frame %+v for %q", fr, data)
		}
	})
}

// The To tag of an ACK and the credentials of a request, read from raw
// lines (the read loop's cheap looks before any parse).
func TestRawLooks(t *testing.T) {
	for _, tt := range []struct {
		name string
		data string
		tag  string
		ok   bool
	}{
		{"bracketed", "ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nTo: \"B\" <sip:b@x;transport=udp>;tag=abc\r\n\r\n", "abc", true},
		{"unbracketed, compact, spaces", "ACK sip:b@x SIP/2.0\nt : sip:b@x ; TAG = q-1 ;x=y\n\n", "q-1", true},
		{"no tag", "ACK sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\n\r\n", "", false},
		{"tag only in the body", "ACK sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\nContent-Length: 12\r\n\r\nTo: x;tag=y\n", "", false},
		{"not an ACK", "INVITE sip:b@x SIP/2.0\r\nTo: <sip:b@x>;tag=abc\r\n\r\n", "", false},
	} {
		if tag, ok := ACKToTag([]byte(tt.data)); tag != tt.tag || ok != tt.ok {
			t.Errorf("%s: ACKToTag = %q, %v; want %q, %v", tt.name, tag, ok, tt.tag, tt.ok)
		}
	}
	for data, want := range map[string]bool{
		"INVITE sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\nProxy-Authorization: Digest username=\"a\"\r\n\r\n": true,
		"REGISTER sip:x SIP/2.0\r\nauthorization : Digest username=\"a\"\r\n\r\n":                       true,
		"INVITE sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\n\r\nProxy-Authorization: in the body\r\n":           false,
		"INVITE sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\n\r\n":                                               false,
	} {
		if got := HasCredentials([]byte(data)); got != want {
			t.Errorf("HasCredentials(%q) = %v, want %v", data, got, want)
		}
	}
	// A refusal's To tag is recognised by the receiver that gave it, and
	// by no other.
	r, other := NewReceiver(), NewReceiver()
	v := r.answer(split([]byte("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n")),
		src, 503, "Service Unavailable", "overloaded")
	res, err := sip.ParseMessage(v.Response)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := res.(*sip.Response).To().Params.Get("tag")
	if !r.RefusalTag(tag) || other.RefusalTag(tag) {
		t.Errorf("tag %q: ours %v, the other receiver's %v", tag, r.RefusalTag(tag), other.RefusalTag(tag))
	}
}
