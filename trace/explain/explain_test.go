package explain

import (
	"errors"
	"strings"
	"testing"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

// firstInvite returns the first INVITE with credentials (the one the proxy
// forwards) seen at iface in a fixture recorded from the real lab.
func firstInvite(t *testing.T, scenario, iface string) capture.Packet {
	t.Helper()
	for _, p := range capturetest.Fixture(t, scenario).SIP {
		if p.Iface == iface && strings.HasPrefix(p.StartLine(), "INVITE ") {
			return p
		}
	}
	t.Fatalf("no INVITE at %s in %s", iface, scenario)
	return capture.Packet{}
}

func explainOf(t *testing.T, p capture.Packet) []Line {
	t.Helper()
	lines, err := Message(p.Payload, Context{Public: strings.HasSuffix(p.Iface, "/wan")})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// problems maps the first characters of each problem line to its text.
func problems(lines []Line) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		for _, p := range l.Problems {
			key, _, _ := strings.Cut(l.Text, ":")
			key, _, _ = strings.Cut(key, "=")
			out[key] = p
		}
	}
	return out
}

func TestEveryLineExplained(t *testing.T) {
	p := firstInvite(t, "normal", "router-a/lan")
	lines := explainOf(t, p)
	got := len(lines)
	// Every line of the message, plus nothing else: the count matches.
	want := strings.Count(strings.TrimRight(string(p.Payload), "\r\n"), "\n") + 1
	if got != want {
		t.Errorf("%d explained lines for a %d-line message", got, want)
	}
	for _, l := range lines {
		if l.Explain == "" {
			t.Errorf("line %q has no explanation", l.Text)
		}
		if strings.Contains(l.Explain, "does not detail") {
			t.Errorf("line %q of the lab's INVITE falls through to the generic text", l.Text)
		}
	}
	// LAN side: private addresses are normal, nothing is a problem.
	if pr := problems(lines); len(pr) != 0 {
		t.Errorf("problems on the LAN copy: %v", pr)
	}
}

func TestPrivateSDPOnInternetSide(t *testing.T) {
	bad := problems(explainOf(t, firstInvite(t, "private-sdp", "router-a/wan")))
	if !strings.Contains(bad["c"], "private address 192.168.1.50 in c=") {
		t.Errorf("c= problem missing: %v", bad)
	}
	if !strings.Contains(bad["Contact"], "private address 192.168.1.50 in Contact, seen on the internet side") {
		t.Errorf("Contact problem missing: %v", bad)
	}
	good := problems(explainOf(t, firstInvite(t, "normal", "router-a/wan")))
	if _, ok := good["c"]; ok {
		t.Errorf("public SDP flagged: %v", good)
	}
	if _, ok := good["Via"]; ok {
		t.Errorf("private Via with rport flagged: %v", good)
	}
}

func TestViaWithoutRport(t *testing.T) {
	bad := problems(explainOf(t, firstInvite(t, "rport-off", "router-a/wan")))
	if !strings.Contains(bad["Via"], "without ;rport") {
		t.Errorf("Via problem missing: %v", bad)
	}
}

func TestNotSIP(t *testing.T) {
	for _, in := range []string{"", "hello", "\x80\x00garbage", "GET / HTTP/1.1\r\n\r\n"} {
		if _, err := Message([]byte(in), Context{}); !errors.Is(err, ErrNotSIP) {
			t.Errorf("%q: %v, want ErrNotSIP", in, err)
		}
	}
	// A response with odd headers is explained, not rejected.
	lines, err := Message([]byte("SIP/2.0 488 Not Acceptable Here\r\nbroken line\r\nv: x\r\n\r\n"), Context{Public: true})
	if err != nil || len(lines) != 3 || !strings.Contains(lines[0].Explain, "No codec") || !strings.Contains(lines[1].Explain, "not a header") {
		t.Errorf("%v %+v", err, lines)
	}
}
