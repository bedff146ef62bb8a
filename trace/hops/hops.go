// Package hops follows one SIP message across every capture point it
// crossed — as the phone sent it, after its router's NAT, at the proxy, as
// the far phone received it — and says what changed between each copy and
// the next: the addresses on the wire (NAT) and the lines of the message
// (a proxy's Via and Record-Route, an ALG's rewrites). It is the training
// page's "message anatomy" read on both sides of the NAT.
package hops

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/ladder"
)

// ErrNoMessage is returned when the call has no such message.
var ErrNoMessage = errors.New("hops: no such message")

// window bounds how long after its first copy a copy still counts as the
// same send: forwarding takes milliseconds, a retransmission T1 (500 ms).
const window = 400 * time.Millisecond

// Copy is the message as one capture point saw it.
type Copy struct {
	// N is its number in the call's ladder.
	N int
	ladder.Message
}

// Change is what differs between one copy and the next.
type Change struct {
	From, To string // capture points
	// Wire is set when the addresses changed (NAT, or a proxy's hop).
	Wire    string
	Removed []string
	Added   []string
}

// Trace is one message at every capture point.
type Trace struct {
	Label   string // "INVITE" or "200 OK"
	CSeq    string
	CallID  string
	Copies  []Copy
	Changes []Change
}

// Of follows message n (its number in the call's ladder; 0 = the INVITE
// that was answered, else the first INVITE, else message 1) through every
// capture point.
func Of(c *ladder.Call, n int) (Trace, error) {
	if len(c.Messages) == 0 {
		return Trace{}, fmt.Errorf("%w: the call has no messages", ErrNoMessage)
	}
	if n == 0 {
		n = defaultMessage(c)
	}
	if n < 1 || n > len(c.Messages) {
		return Trace{}, fmt.Errorf("%w: %d (the ladder numbers messages 1..%d)", ErrNoMessage, n, len(c.Messages))
	}
	m := c.Messages[n-1]
	k := keyOf(m)
	// Back to the first copy of this send, then forward through the rest.
	first := n - 1
	for i := n - 2; i >= 0; i-- {
		if keyOf(c.Messages[i]) == k && m.Time.Sub(c.Messages[i].Time) < window {
			first = i
		}
	}
	t := Trace{Label: m.Label, CSeq: m.Header("CSeq"), CallID: m.Header("Call-ID")}
	start := c.Messages[first].Time
	for i := first; i < len(c.Messages); i++ {
		x := c.Messages[i]
		if x.Time.Sub(start) > window {
			break
		}
		if keyOf(x) != k || seenAt(t.Copies, x) {
			continue
		}
		t.Copies = append(t.Copies, Copy{N: i + 1, Message: x})
	}
	for i := 1; i < len(t.Copies); i++ {
		t.Changes = append(t.Changes, diff(t.Copies[i-1], t.Copies[i]))
	}
	return t, nil
}

// keyOf identifies one message across hops: the Call-ID may change (an
// ALG, a B2BUA), the CSeq and the first line's method or status do not.
func keyOf(m ladder.Message) string {
	return fmt.Sprintf("%v|%s|%d|%s", m.Request, m.Method, m.Status, m.Header("CSeq"))
}

// seenAt drops a later copy on a link already shown (a retransmission
// inside the window).
func seenAt(copies []Copy, x ladder.Message) bool {
	for _, c := range copies {
		if c.Src == x.Src && c.Dst == x.Dst {
			return true
		}
	}
	return false
}

func defaultMessage(c *ladder.Call) int {
	answered := ""
	for _, m := range c.Messages {
		if !m.Request && m.Method == "INVITE" && m.Status >= 200 && m.Status < 300 {
			answered = m.Header("CSeq")
			break
		}
	}
	firstInvite := 0
	for i, m := range c.Messages {
		if m.Request && m.Method == "INVITE" {
			if answered != "" && m.Header("CSeq") == answered {
				return i + 1
			}
			if firstInvite == 0 {
				firstInvite = i + 1
			}
		}
	}
	if firstInvite > 0 {
		return firstInvite
	}
	return 1
}

func lines(m ladder.Message) []string {
	text := strings.ReplaceAll(string(m.Payload), "\r\n", "\n")
	return strings.Split(strings.TrimRight(text, "\n"), "\n")
}

// diff compares the lines as sets with multiplicity: header order rarely
// changes on the way, what a hop adds or rewrites does.
func diff(a, b Copy) Change {
	ch := Change{From: a.Where(), To: b.Where()}
	if a.Src != b.Src || a.Dst != b.Dst {
		ch.Wire = fmt.Sprintf("%s → %s became %s → %s", a.Src, a.Dst, b.Src, b.Dst)
	}
	ch.Added = without(lines(b.Message), lines(a.Message))
	ch.Removed = without(lines(a.Message), lines(b.Message))
	return ch
}

// without is xs less the lines ys matches one for one (a multiset
// difference), in xs's order: a line twice in xs and once in ys is left
// once.
func without(xs, ys []string) []string {
	count := map[string]int{}
	for _, l := range ys {
		count[l]++
	}
	var out []string
	for _, l := range xs {
		if count[l] > 0 {
			count[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

// Write prints the trace for people: where it was seen, the first copy
// (as sent) and the last (as received) in full, then what each hop
// changed.
func Write(w io.Writer, t Trace) {
	fmt.Fprintf(w, "%s (CSeq %s, Call-ID %s) at %d capture point(s), in the order it crossed them:\n", t.Label, t.CSeq, t.CallID, len(t.Copies))
	for _, c := range t.Copies {
		fmt.Fprintf(w, "  ladder #%-3d %-32s %s  %s → %s\n", c.N, c.Where(), c.Time.UTC().Format("15:04:05.000"), c.Src, c.Dst)
	}
	full := func(title string, c Copy) {
		fmt.Fprintf(w, "\n── %s (at %s, %s → %s)\n", title, c.Where(), c.Src, c.Dst)
		for _, l := range lines(c.Message) {
			fmt.Fprintf(w, "   %s\n", l)
		}
	}
	if len(t.Copies) > 0 {
		full("as sent", t.Copies[0])
	}
	if len(t.Copies) > 1 {
		full("as received", t.Copies[len(t.Copies)-1])
	}
	if len(t.Changes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nWhat changed on the way:")
	for _, ch := range t.Changes {
		fmt.Fprintf(w, "  %s → %s:\n", ch.From, ch.To)
		if ch.Wire != "" {
			fmt.Fprintf(w, "    addresses: %s\n", ch.Wire)
		}
		if len(ch.Removed) == 0 && len(ch.Added) == 0 {
			fmt.Fprintln(w, "    message: unchanged, byte for byte")
			continue
		}
		for _, l := range ch.Removed {
			fmt.Fprintf(w, "    - %s\n", l)
		}
		for _, l := range ch.Added {
			fmt.Fprintf(w, "    + %s\n", l)
		}
	}
}
