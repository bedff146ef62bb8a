package scenario

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/ladder"
)

func msg(at time.Duration, req bool, method string, status int) ladder.Message {
	return msgSeq(at, req, method, status, 1)
}

func msgSeq(at time.Duration, req bool, method string, status, cseq int) ladder.Message {
	first := method + " sip:x SIP/2.0"
	if !req {
		first = "SIP/2.0 " + strconv.Itoa(status) + " X"
	}
	payload := first + "\r\nCSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n\r\n"
	return ladder.Message{Packet: capture.Packet{Time: time.Unix(1000, 0).Add(at), Payload: []byte(payload)}, Request: req, Method: method, Status: status}
}

// One packet seen at several capture points is one send; a retransmission
// T1 later is another.
func TestSeenFoldsCapturePointsKeepsRetransmissions(t *testing.T) {
	c := &ladder.Call{Messages: []ladder.Message{
		msg(0, true, "INVITE", 0),
		msg(time.Millisecond, true, "INVITE", 0), // same packet at router wan
		msg(100*time.Millisecond, false, "INVITE", 200),
		msg(101*time.Millisecond, false, "INVITE", 200),
		msg(600*time.Millisecond, false, "INVITE", 200), // retransmission
		msg(1600*time.Millisecond, false, "INVITE", 200),
		msg(33*time.Second, true, "BYE", 0),
		msg(33*time.Second+time.Millisecond, false, "BYE", 200),
	}}
	got := seen([]*ladder.Call{c})
	want := []string{"INVITE", "200/INVITE", "200/INVITE", "200/INVITE", "BYE", "200/BYE"}
	if !slices.Equal(got, want) {
		t.Fatalf("seen %v, want %v", got, want)
	}
}

// A new CSeq is a new send even milliseconds later: the REGISTER that
// answers a 401, the ACK of a 488 right after the ACK of a 407.
func TestSeenSeparatesCSeqs(t *testing.T) {
	c := &ladder.Call{Messages: []ladder.Message{
		msgSeq(0, true, "REGISTER", 0, 1),
		msgSeq(2*time.Millisecond, false, "REGISTER", 401, 1),
		msgSeq(4*time.Millisecond, true, "REGISTER", 0, 2),
		msgSeq(5*time.Millisecond, true, "REGISTER", 0, 2), // at the registrar
		msgSeq(7*time.Millisecond, false, "REGISTER", 200, 2),
	}}
	got := seen([]*ladder.Call{c})
	want := []string{"REGISTER", "401/REGISTER", "REGISTER", "200/REGISTER"}
	if !slices.Equal(got, want) {
		t.Fatalf("seen %v, want %v", got, want)
	}
}

func TestMissing(t *testing.T) {
	seen := []string{"INVITE", "407/INVITE", "ACK", "INVITE", "180/INVITE", "486/INVITE", "ACK"}
	tests := []struct {
		name string
		exp  []Expect
		want int
	}{
		{"busy in order", ex("INVITE", "180/INVITE", "486/INVITE", "ACK"), 0},
		{"order matters", ex("486/INVITE", "180/INVITE"), 1},
		{"absent", ex("INVITE", "200/INVITE", "ACK"), 1},
		{"times", []Expect{{Msg: "INVITE", Times: 2}}, 0},
		{"too few", []Expect{{Msg: "ACK", Times: 3}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := missing(seen, tc.exp); len(got) != tc.want {
				t.Fatalf("missing %v, want %d", got, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	for _, s := range List() {
		if got, err := Lookup(s.Name); err != nil || got.Name != s.Name || len(got.steps) == 0 || len(got.Expect) == 0 {
			t.Errorf("%s: %+v %v", s.Name, got, err)
		}
	}
	want := []string{"basic", "busy", "cancel", "auth", "hold", "transfer", "mismatch", "no-ack"}
	var names []string
	for _, s := range List() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("scenarios %v, want %v", names, want)
	}
	if _, err := Lookup("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown: %v", err)
	}
}

func TestTrimKeepsWhatFollowsStart(t *testing.T) {
	c := &ladder.Call{Messages: []ladder.Message{msg(0, true, "REGISTER", 0), msg(time.Hour, true, "REGISTER", 0), msg(time.Hour+time.Millisecond, false, "REGISTER", 401)}}
	got := trim(c, time.Unix(1000, 0).Add(time.Minute))
	if len(got.Messages) != 2 || len(c.Messages) != 3 || !got.Start.Equal(got.Messages[0].Time) {
		t.Fatalf("trim: %d messages (original %d), start %v", len(got.Messages), len(c.Messages), got.Start)
	}
}
