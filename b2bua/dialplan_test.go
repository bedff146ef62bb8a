package b2bua

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/sdpneg"
)

func TestParseDialPlan(t *testing.T) {
	for _, tc := range []struct {
		name, plan string
		err        string // substring; "" = valid
	}{
		{"minimal", "100 alice", ""},
		{"comments and forwards", "# x\n100 alice busy=101 noanswer=voicemail:alice timeout=5s\n\n101 bob\n*97 voicemail", ""},
		{"empty", "# only a comment\n", "no extensions"},
		{"one field", "100", "want"},
		{"bad number", "10a alice", "number"},
		{"duplicate", "100 alice\n100 bob", "twice"},
		{"bad target", "100 al/ice", "target"},
		{"bad mailbox", "100 voicemail:", "mailbox"},
		{"unknown option", "100 alice ring=5s", "unknown option"},
		{"option without value", "100 alice busy", "key=value"},
		{"bad timeout", "100 alice timeout=soon", "timeout"},
		{"huge timeout", "100 alice timeout=1h", "timeout"},
		{"bad forward", "100 alice busy=<sip:x>", "busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp, err := ParseDialPlan(strings.NewReader(tc.plan))
			if tc.err == "" {
				if err != nil || dp == nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrDialPlan) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want ErrDialPlan mentioning %q", err, tc.err)
			}
		})
	}
}

func TestDialPlanLookup(t *testing.T) {
	dp, err := ParseDialPlan(strings.NewReader(testDialPlan))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dialled string
		ok      bool
		target  string
		busy    string
		noans   string
		timeout time.Duration
	}{
		{"101", true, "bob", "carol", "voicemail:bob", 2 * time.Second},
		{"bob", true, "bob", "carol", "voicemail:bob", 2 * time.Second},
		{"100", true, "alice", "", "", 0},
		{"*97", true, "voicemail", "", "", 0},
		{"999", false, "", "", "", 0},
		{"eve", false, "", "", "", 0},
	} {
		e, ok := dp.Lookup(tc.dialled)
		if ok != tc.ok {
			t.Errorf("%s: found %v", tc.dialled, ok)
			continue
		}
		if !ok {
			continue
		}
		str := func(p *Target) string {
			if p == nil {
				return ""
			}
			return p.String()
		}
		if e.Target.String() != tc.target || str(e.Busy) != tc.busy || str(e.NoAnswer) != tc.noans || e.Timeout != tc.timeout {
			t.Errorf("%s: %s busy=%s noanswer=%s timeout=%v", tc.dialled, e.Target, str(e.Busy), str(e.NoAnswer), e.Timeout)
		}
	}
	if dp.ExtensionOf("carol") != "102" {
		t.Errorf("carol's extension %q", dp.ExtensionOf("carol"))
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
		err               error
	}{
		{"media_anchor", "off", "off", nil},
		{"media-anchor", "ON", "on", nil},
		{"latch", "no", "off", nil},
		{"moh", "maybe", "", ErrBadValue},
		{"no_answer", "15s", "15s", nil},
		{"no_answer", "10ms", "", ErrBadValue},
		{"rport", "on", "", ErrUnknownSetting},
	} {
		s := DefaultSettings()
		err := s.Set(tc.name, tc.value)
		if !errors.Is(err, tc.err) {
			t.Errorf("set %s %s: %v, want %v", tc.name, tc.value, err, tc.err)
			continue
		}
		if err == nil {
			if got, _ := s.Get(tc.name); got != tc.want {
				t.Errorf("set %s %s: reads %s", tc.name, tc.value, got)
			}
		}
	}
}

func TestRewriteSDP(t *testing.T) {
	phone := "v=0\r\no=alice 1 1 IN IP4 192.168.1.50\r\ns=-\r\nc=IN IP4 192.168.1.50\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 0 8 101\r\nc=IN IP4 192.168.1.50\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:40001\r\na=sendonly\r\n" +
		"m=video 0 RTP/AVP 31\r\n"
	hold := sdpneg.RecvOnly
	for _, tc := range []struct {
		name     string
		rw       rewrite
		addr     string
		port     int
		dir      sdpneg.Direction
		noRTCPIn bool
	}{
		{"anchored", rewrite{addr: mustAddr(pbxIP), port: 30000}, pbxIP, 30000, sdpneg.SendOnly, true},
		{"anchored with direction", rewrite{addr: mustAddr(pbxIP), port: 30002, dir: &hold}, pbxIP, 30002, sdpneg.RecvOnly, true},
		{"direct keeps addresses", rewrite{}, "192.168.1.50", 40000, sdpneg.SendOnly, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sdpOrigin{id: 42}
			out, err := rewriteSDP([]byte(phone), &o, tc.rw)
			if err != nil {
				t.Fatal(err)
			}
			r, err := sdpneg.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if r.Addr.String() != tc.addr || r.Port != tc.port || r.Direction != tc.dir {
				t.Fatalf("got %v:%d %s\n%s", r.Addr, r.Port, r.Direction, out)
			}
			if r.SessionID != 42 || r.SessionVersion != 1 || len(r.Codecs) != 3 || r.DTMFPayloadType != 101 {
				t.Fatalf("origin %d/%d codecs %v\n%s", r.SessionID, r.SessionVersion, r.Codecs, out)
			}
			if tc.noRTCPIn == strings.Contains(string(out), "a=rtcp:") {
				t.Fatalf("a=rtcp handling wrong:\n%s", out)
			}
			if !strings.Contains(string(out), "m=video 0 ") {
				t.Fatalf("rejected video stream lost:\n%s", out)
			}
			again, _ := rewriteSDP([]byte(phone), &o, tc.rw)
			if r2, _ := sdpneg.Parse(again); r2.SessionVersion != 2 {
				t.Fatalf("second rewrite version %d, want 2", r2.SessionVersion)
			}
		})
	}
	if _, err := rewriteSDP([]byte("not sdp"), &sdpOrigin{}, rewrite{}); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("garbage: %v", err)
	}
}

// The example shipped for the Docker lab must stay a valid plan.
func TestExampleDialPlan(t *testing.T) {
	dp, err := LoadDialPlan("dialplan.example")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := dp.Lookup("101")
	if !ok || e.Target.User != "bob" || e.Busy == nil || e.Busy.User != "carol" || e.NoAnswer.String() != "voicemail:bob" {
		t.Fatalf("101: %+v", e)
	}
}
