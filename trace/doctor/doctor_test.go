package doctor

import (
	"strings"
	"testing"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
	"github.com/siplab/siplab/trace/ladder"
)

// calls reads a fixture recorded from the real lab (testdata/captures).
func calls(t *testing.T, scenario string) []*ladder.Call {
	t.Helper()
	return ladder.Build(capturetest.Fixture(t, scenario), ladder.Lab())
}

// findings runs one rule over every dialog of a fixture, each dialog with
// all the others in view (as siplab doctor does).
func findings(t *testing.T, rule, scenario string) []Finding {
	t.Helper()
	r, ok := rules[rule]
	if !ok {
		t.Fatalf("no rule %q", rule)
	}
	var out []Finding
	all := calls(t, scenario)
	for _, c := range all {
		out = append(out, r.run(c, all)...)
	}
	return out
}

// errors keeps the error-level findings: the private-contact rule warns on
// every lab phone (their Contact is private by design, contact_fixup hides
// it), so "does not show the bug" means "no error" for it.
func errorsOnly(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == Error {
			out = append(out, f)
		}
	}
	return out
}

// Each rule: a fixture that shows the bug (with a word the finding or its
// evidence must contain) and the normal call, which must not trigger it.
func TestRules(t *testing.T) {
	cases := []struct {
		rule, bad, evidence, good string
	}{
		{"private-sdp", "private-sdp", "c=IN IP4 192.168.1.50", "normal"},
		{"media", "private-sdp", "one-way", "normal"},
		{"private-via", "rport-off", "Via sent-by 192.168.1.50:5060, no rport", "normal"},
		{"retransmissions", "rport-off", "seen 3 times", "normal"},
		{"retransmissions", "ack-lost", "200 OK 192.168.2.50:5060 → 203.0.113.10:5060 seen 11 times", "normal"},
		{"lost-request", "ack-lost", "BYE (CSeq 3 BYE) seen only on its way to the proxy, at router-a", "normal"},
		{"lost-request", "contact-fixup-off", "seen only on its way to the proxy, at router-a", "normal"},
		{"auth", "wrong-password", "401 Unauthorized to REGISTER", "normal"},
		{"auth", "policy-403", "403 Forbidden", "wrong-password"},
		{"closed-pinhole", "pinhole-expired", "arrived 4 times on the internet side, left 1 times", "normal"},
		{"closed-pinhole", "pinhole-expired", "INVITE for 192.168.2.50 delivered to 192.168.2.51", "private-sdp"},
		{"codec-mismatch", "codec-mismatch", "488 Not Acceptable Here", "normal"},
		{"alg-rewrite", "alg-rewrite-call-id", `"Call-ID: Lzb0jzOuKMwf6VTHdECn@192.168.1.50" → "Call-ID: Lzb0jzOuKMwf6VTHdECn@203.0.113.2"`, "normal"},
		// Every capture point: the proxy's own 480 at once is no lost
		// request; the INVITE that never left the proxy (408) is one.
		{"lost-request", "contact-fixup-off-edge", "INVITE (CSeq 2 INVITE) seen only on its way to the proxy, at router-a; answers: [408 408]", "registration-expired"},
		{"registration-expired", "registration-expired", "200 OK to REGISTER bob@siplab.test granted Expires 60 s", "edge-direct"},
		{"registration-expired", "registration-expired", "480 Temporarily Unavailable to the INVITE", "normal"},
		{"registration-expired", "registration-expired", "after the registration ran out", "contact-fixup-off-edge"},
		{"private-contact", "contact-fixup-off-edge", "REGISTER of the callee bob@siplab.test from 203.0.113.3:5060: Contact: <sip:bob@192.168.2.50:5060>", "edge-direct"},
		{"private-contact", "contact-fixup-off", "INVITE for the phone never left the proxy", "normal"},
		{"private-contact", "ack-lost", "BYE for sip:bob@192.168.2.50:5060 (CSeq 3 BYE) sent 11 times, never answered", "edge-pbx"},
	}
	for _, tc := range cases {
		t.Run(tc.rule+"/"+tc.bad, func(t *testing.T) {
			got := findings(t, tc.rule, tc.bad)
			if tc.rule == "private-contact" {
				got = errorsOnly(got)
			}
			if len(got) == 0 {
				t.Fatalf("no finding on %s", tc.bad)
			}
			var text strings.Builder
			for _, f := range got {
				text.WriteString(f.Summary + "\n")
				for _, e := range f.Evidence {
					if e.Iface == "" {
						t.Errorf("evidence without capture point: %+v", e)
					}
					text.WriteString(e.String() + "\n")
				}
			}
			if !strings.Contains(text.String(), tc.evidence) {
				t.Errorf("evidence lacks %q:\n%s", tc.evidence, text.String())
			}
			if tc.rule == "auth" && tc.bad == "policy-403" && strings.Contains(text.String(), "wrong") {
				t.Errorf("a 403 after credentials reported as a wrong password:\n%s", text.String())
			}
			good := findings(t, tc.rule, tc.good)
			if tc.rule == "private-contact" {
				good = errorsOnly(good)
			}
			for _, f := range good {
				if tc.rule == "auth" && tc.good == "wrong-password" && !strings.HasPrefix(f.Summary, "403 Forbidden") {
					continue // the 401 loop is this fixture's own finding
				}
				t.Errorf("finding on %s, which does not show the bug: %s %v", tc.good, f.Summary, f.Evidence)
			}
		})
	}
}

// The normal calls are clean: no rule finds an error or a warning in any
// dialog. The one note allowed is the lab phones' private Contact, which
// the proxy's contact_fixup hides — and it must say so.
func TestNormalIsClean(t *testing.T) {
	for _, scenario := range []string{"normal", "edge-direct", "edge-pbx"} {
		all := calls(t, scenario)
		for _, c := range all {
			for _, f := range CheckIn(all, c) {
				if f.Rule == "private-contact" && f.Severity == Note && strings.Contains(f.Note, "contact_fixup") {
					continue
				}
				t.Errorf("%s: %s: %s %s %v", scenario, f.Rule, f.Severity, f.Summary, f.Evidence)
			}
		}
	}
}

// A phone that writes its public address in Contact gives the rule
// nothing, not even a warning.
func TestPublicContactNoWarning(t *testing.T) {
	for _, f := range findings(t, "private-contact", "contact-public") {
		t.Errorf("%s %s %v", f.Severity, f.Summary, f.Evidence)
	}
}

// The expired registration's evidence points into the REGISTER dialog: the
// message it names there is the 200 OK that granted the binding, and the
// one it names in the call is the INVITE that failed.
func TestExpiredEvidencePointsAtPackets(t *testing.T) {
	all := calls(t, "registration-expired")
	byID := map[string]*ladder.Call{}
	for _, c := range all {
		byID[c.ID] = c
	}
	n := 0
	for _, c := range all {
		for _, f := range rules["registration-expired"].run(c, all) {
			n++
			reg, ok := byID[f.Evidence[0].Call]
			if !ok {
				t.Fatalf("evidence %v: no dialog %q", f.Evidence[0], f.Evidence[0].Call)
			}
			m := reg.Messages[f.Evidence[0].N-1]
			if m.Request || m.Status != 200 || m.Method != "REGISTER" || m.Iface != f.Evidence[0].Iface {
				t.Errorf("evidence %v names %s %s at %s, want the 200 OK to REGISTER", f.Evidence[0], m.Label, m.Method, m.Iface)
			}
			if inv := c.Messages[f.Evidence[1].N-1]; !inv.Request || inv.Method != "INVITE" || f.Evidence[1].Call != "" {
				t.Errorf("evidence %v names %s, want the INVITE of this call", f.Evidence[1], inv.Label)
			}
			if !strings.Contains(f.Evidence[0].String(), "in call "+reg.ID) {
				t.Errorf("evidence %q does not name its dialog", f.Evidence[0])
			}
		}
	}
	if n != 1 {
		t.Errorf("%d registration-expired findings, want 1 (the one failed call)", n)
	}
}

// Severity follows the consequence: a note while the proxy hides the
// private Contact (saying so), an error once a request went to it.
func TestPrivateContactSeverity(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		want     Severity
	}{{"edge-direct", Note}, {"normal", Note}, {"contact-fixup-off-edge", Error}, {"ack-lost", Error}} {
		worst := Severity(0)
		for _, f := range findings(t, "private-contact", tc.scenario) {
			worst = max(worst, f.Severity)
			if f.Severity == Note && f.Note == "" {
				t.Errorf("%s: a note that does not say what hides it: %s", tc.scenario, f.Summary)
			}
		}
		if worst != tc.want {
			t.Errorf("%s: worst private-contact finding %v, want %v", tc.scenario, worst, tc.want)
		}
	}
}

// Rules must cope with nothing: an empty call and a message without
// headers (a capture of garbage that still looked like SIP).
func TestEmptyInput(t *testing.T) {
	if f := Check(&ladder.Call{}); len(f) != 0 {
		t.Errorf("findings on an empty call: %v", f)
	}
	tr := &capture.Trace{SIP: []capture.Packet{
		{Iface: "x/wan", Kind: capture.KindSIP, Payload: []byte("SIP/2.0 488\r\n\r\n")},
		// A request line without a Request-URI, To or CSeq; a Contact
		// and a REGISTER 200 with nothing parseable in them.
		{Iface: "x/wan", Kind: capture.KindSIP, Payload: []byte("INVITE\r\nContact: sip:\r\n\r\n")},
		{Iface: "x/internet", Kind: capture.KindSIP, Payload: []byte("SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nTo: <sip:a@b>\r\nContact: <sip:a@10.0.0.1>;expires=x\r\nExpires: -5\r\n\r\n")},
		{Iface: "x/internet", Kind: capture.KindSIP, Payload: []byte("BYE sip:a@10.0.0.1 SIP/2.0\r\nTo: <sip:a@b>\r\nCSeq: 2 BYE\r\n\r\n")},
	}}
	all := ladder.Build(tr, nil)
	for _, c := range all {
		CheckIn(all, c) // must not panic
	}
}
