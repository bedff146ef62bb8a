package uaclient

import (
	"testing"
)

func TestParseReferTo(t *testing.T) {
	tests := []struct {
		in           string
		wantURI      string
		wantReplaces string
		wantErr      bool
	}{
		{in: "<sip:carol@siplab.test>", wantURI: "sip:carol@siplab.test"},
		{in: `"Carol" <sip:carol@10.0.0.3:5062;transport=udp>;x=1`, wantURI: "sip:carol@10.0.0.3:5062;transport=udp"},
		{in: "sip:carol@siplab.test;param", wantURI: "sip:carol@siplab.test"},
		{in: "<sip:carol@siplab.test?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>", wantURI: "sip:carol@siplab.test", wantReplaces: "abc@h;to-tag=1;from-tag=2"},
		{in: "<sip:carol@siplab.test?Subject=x&replaces=a%3Bto-tag%3Db%3Bfrom-tag%3Dc>", wantURI: "sip:carol@siplab.test", wantReplaces: "a;to-tag=b;from-tag=c"},
		{in: "<tel:+15551234>", wantErr: true},
		{in: "<sip:carol@siplab.test", wantErr: true},
		{in: "", wantErr: true},
		{in: "<sip:>", wantErr: true},
		{in: "<sip:c@h?Replaces=%zz>", wantErr: true},
	}
	for _, tt := range tests {
		u, rep, err := parseReferTo(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if u.String() != tt.wantURI || rep != tt.wantReplaces {
			t.Errorf("%q: %s / %q, want %s / %q", tt.in, u.String(), rep, tt.wantURI, tt.wantReplaces)
		}
	}
	// What escapeURIHeader writes, parseReferTo reads back.
	r := "x@y.z;to-tag=a b;from-tag=c&d"
	if _, got, err := parseReferTo("<sip:c@h?Replaces=" + escapeURIHeader(r) + ">"); err != nil || got != r {
		t.Fatalf("round trip %q -> %q, %v", r, got, err)
	}
}

func TestParseDTMFInfo(t *testing.T) {
	tests := []struct {
		ct, body, want string
		wantErr        bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5", false},
		{"Application/DTMF-Relay; charset=x", "signal = #\r\n", "#", false},
		{"application/dtmf-relay", "Signal=10\r\n", "*", false},
		{"application/dtmf-relay", "Signal=15\r\n", "D", false},
		{"application/dtmf", "a", "A", false},
		{"application/dtmf-relay", "Duration=160\r\n", "", true},
		{"application/dtmf-relay", "Signal=55\r\n", "", true},
		{"application/dtmf", "", "", true},
		{"text/plain", "5", "", true},
	}
	for _, tt := range tests {
		got, err := parseDTMFInfo(tt.ct, []byte(tt.body))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s %q: %q %v, want %q (error %v)", tt.ct, tt.body, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseReplacesAndBodies(t *testing.T) {
	if r, err := parseReplaces("cid@h; to-tag=a ;from-tag=b;early-only"); err != nil || r.callID != "cid@h" || r.toTag != "a" || r.fromTag != "b" || !r.earlyOnly {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", ";to-tag=a;from-tag=b", "cid;to-tag=a", "cid;from-tag=b"} {
		if _, err := parseReplaces(bad); err == nil {
			t.Errorf("Replaces %q accepted", bad)
		}
	}
	if w, v, err := parseMessageSummary([]byte("Messages-Waiting: no\r\nVoice-Message: 0/3\r\n")); err != nil || *w || v != "0/3" {
		t.Fatalf("message-summary: %v %q %v", w, v, err)
	}
	for _, bad := range []string{"", "Voice-Message: 1/2", "Messages-Waiting: perhaps"} {
		if _, _, err := parseMessageSummary([]byte(bad)); err == nil {
			t.Errorf("message-summary %q accepted", bad)
		}
	}
	ds, full, err := parseDialogInfo([]byte(`<dialog-info state="partial"><dialog id="x"><state>Proceeding</state></dialog><dialog><state>terminated</state></dialog></dialog-info>`))
	if err != nil || full || len(ds) != 2 || ds[0].State != "proceeding" || ds[1].ID != "dialog-2" || lampOf(ds) != "ringing" {
		t.Fatalf("dialog-info: %+v %v %v", ds, full, err)
	}
	for _, bad := range []string{"", "<dialog-info", "<other/>"} {
		if _, _, err := parseDialogInfo([]byte(bad)); err == nil {
			t.Errorf("dialog-info %q accepted", bad)
		}
	}
}

// FuzzParsers: no input makes the parsers of received bodies and headers
// panic.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"<sip:a@b?Replaces=x%3Bto-tag%3D1%3Bfrom-tag%3D2>", "Signal=5\r\n", "Messages-Waiting: yes\r\n",
		`<dialog-info state="full"><dialog id="1"><state>confirmed</state></dialog></dialog-info>`, "a;to-tag=;from-tag", "<", "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseReferTo(s)
		parseReplaces(s)
		parseDTMFInfo("application/dtmf-relay", []byte(s))
		parseDTMFInfo("application/dtmf", []byte(s))
		parseMessageSummary([]byte(s))
		parseDialogInfo([]byte(s))
	})
}
