package ladder

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Text layout: a time gutter, then one lane per column. colW is wide enough
// for "203.0.113.10:5060"-sized headers and "183 Session Progress" labels.
const (
	gutter = 9
	colW   = 20
)

// event is one row of the ladder: a SIP message or the start of an RTP
// stream, merged by time so media shows where it began.
type event struct {
	at     time.Time
	msg    *Message
	stream *Stream
	n      int // message number (1-based) for messages
	// stun and run are a browser call's STUN message and counted STUN
	// exchanges (stun.go).
	stun *Message
	run  *STUNRun
}

func (c *Call) events() []event {
	var ev []event
	for i := range c.Messages {
		ev = append(ev, event{at: c.Messages[i].Time, msg: &c.Messages[i], n: i + 1})
	}
	streams := append([]Stream(nil), c.Streams...)
	sortStreams(streams)
	for i := range streams {
		ev = append(ev, event{at: streams[i].First, stream: &streams[i]})
	}
	ev = append(ev, c.stunEvents()...)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].at.Before(ev[j].at) })
	return ev
}

// PayloadName names the static RTP payload types the lab uses.
func PayloadName(pt uint8) string {
	switch pt {
	case 0:
		return "PCMU"
	case 8:
		return "PCMA"
	case 9:
		return "G722"
	case 18:
		return "G729"
	case 101:
		return "telephone-event"
	}
	return fmt.Sprintf("PT %d", pt)
}

// Summary is the one-line description of the call used in lists.
func (c *Call) Summary() string {
	from, to := "", ""
	for _, m := range c.Messages {
		if m.Request {
			from, to = userOf(m.Header("From")), userOf(m.Header("To"))
			break
		}
	}
	return fmt.Sprintf("%s %s %s → %s, %s, %d messages, %d RTP streams",
		c.Start.UTC().Format("15:04:05.000"), c.Kind(), from, to, c.State(), len(c.Messages), len(c.Streams))
}

// userOf extracts "alice" from `"Alice" <sip:alice@siplab.test>;tag=x`.
func userOf(h string) string {
	if i := strings.Index(h, "sip:"); i >= 0 {
		h = h[i+4:]
	}
	end := strings.IndexAny(h, "@>;")
	if end >= 0 {
		h = h[:end]
	}
	return h
}

// WriteText draws the call as a text ladder.
func WriteText(w io.Writer, c *Call) error {
	bw := bufio.NewWriter(w)
	if c.N > 0 {
		fmt.Fprintf(bw, "Call %d (%s); message n is %d.n (siplab explain %d.1)\n", c.N, c.ID, c.N, c.N)
	} else {
		fmt.Fprintf(bw, "Dialog %s\n", c.ID)
	}
	if len(c.CallIDs) > 1 {
		fmt.Fprintf(bw, "  grouped Call-IDs: %s\n", strings.Join(c.CallIDs, ", "))
	}
	fmt.Fprintf(bw, "  %s, started %s UTC\n", c.Summary(), c.Start.UTC().Format("2006-01-02 15:04:05.000"))
	if len(c.Legs) > 1 {
		for _, l := range c.Legs {
			fmt.Fprintf(bw, "  %s\n", l.Label())
		}
	}
	fmt.Fprintln(bw)

	width := gutter + len(c.Columns)*colW
	header := func(text func(Column) string) {
		b := []rune(strings.Repeat(" ", width))
		for i, col := range c.Columns {
			put(b, center(i), text(col))
		}
		fmt.Fprintln(bw, strings.TrimRight(string(b), " "))
	}
	header(Column.Title)
	header(func(col Column) string { return col.Host.Role })
	header(func(col Column) string { return col.Addr.String() })
	header(func(col Column) string {
		if col.Private() {
			return "(private)"
		}
		return "(public)"
	})
	fmt.Fprintln(bw, lanes(len(c.Columns), width))

	for _, e := range c.events() {
		rel := e.at.Sub(c.Start).Seconds()
		if m := e.msg; m != nil {
			label := m.Label
			if m.SDP {
				label += " (SDP)"
			}
			fmt.Fprintln(bw, labelRow(len(c.Columns), width, m.From, m.To, fmt.Sprintf("%d %s", e.n, label)))
			row := arrowRow(len(c.Columns), width, m.From, m.To, '-')
			copy(row, []rune(fmt.Sprintf("%8.3f", rel)))
			fmt.Fprintf(bw, "%s  %s %s → %s%s%s\n", string(row), m.Where(), m.Src, m.Dst, legNote(c, m.Leg), natNote(m.NAT, m.ALG))
			continue
		}
		if e.stream == nil {
			writeSTUNRow(bw, c, e, width)
			continue
		}
		s := e.stream
		fmt.Fprintln(bw, labelRow(len(c.Columns), width, s.From, s.To,
			fmt.Sprintf("RTP %s %d pkts", PayloadName(s.PayloadType), s.Packets)))
		row := arrowRow(len(c.Columns), width, s.From, s.To, '=')
		copy(row, []rune(fmt.Sprintf("%8.3f", rel)))
		fmt.Fprintf(bw, "%s  %s %s → %s%s\n", string(row), s.Where(), s.Src, s.Dst, natNote(s.NAT, ""))
	}
	fmt.Fprintln(bw, lanes(len(c.Columns), width))

	if len(c.Streams) > 0 {
		fmt.Fprintln(bw, "\nRTP streams (per capture point):")
		streams := append([]Stream(nil), c.Streams...)
		sortStreams(streams)
		for _, s := range streams {
			fmt.Fprintf(bw, "  %-13s %s %s → %s %s  %s ssrc %08x  %d pkts, lost %d (%.1f%%), %.2f s\n",
				s.Where(), c.Columns[s.From].Title(), s.Src, c.Columns[s.To].Title(), s.Dst,
				PayloadName(s.PayloadType), s.SSRC, s.Packets, s.Lost, lossPct(s), s.Last.Sub(s.First).Seconds())
		}
		for _, line := range c.MediaVerdict() {
			fmt.Fprintln(bw, "  "+line)
		}
	} else if c.IsInvite() {
		fmt.Fprintln(bw, "\nRTP streams: none seen for this call's SDP ports")
	}
	writeSTUNSummary(bw, c)
	return bw.Flush()
}

// legNote names the message's leg when the call has several.
func legNote(c *Call, leg int) string {
	if len(c.Legs) < 2 || leg == 0 {
		return ""
	}
	return fmt.Sprintf("  leg %d", leg)
}

// natNote is the router's translation (and its ALG's rewrite) of a copy.
func natNote(nat, alg string) string {
	var parts []string
	for _, p := range []string{nat, alg} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "  [NAT " + strings.Join(parts, "; ") + "]"
}

func lossPct(s Stream) float64 {
	if s.Packets+s.Lost == 0 {
		return 0
	}
	return 100 * float64(s.Lost) / float64(s.Packets+s.Lost)
}

// MediaVerdict says, for each capture point that saw the call's RTP,
// whether audio flowed both ways there: the first question of every audio
// ticket, answered where the packets stop.
func (c *Call) MediaVerdict() []string {
	type dirs struct{ fwd, back int }
	var order []string
	per := map[string]*[2]int{}
	ends := map[string][2]int{}
	for _, s := range c.Streams {
		// A stream recorded at several points on one link counts at each.
		for _, iface := range s.points() {
			d := per[iface]
			if d == nil {
				d = &[2]int{}
				per[iface] = d
				order = append(order, iface)
				ends[iface] = [2]int{s.From, s.To}
			}
			if e := ends[iface]; s.From == e[0] || s.To == e[1] {
				d[0] += s.Packets
			} else {
				d[1] += s.Packets
			}
		}
	}
	sort.Strings(order)
	var out []string
	for _, iface := range order {
		d, e := per[iface], ends[iface]
		a, b := c.Columns[e[0]].Title(), c.Columns[e[1]].Title()
		if d[1] == 0 {
			out = append(out, fmt.Sprintf("%s: one-way, %s → %s %d packets, nothing back", iface, a, b, d[0]))
		} else {
			out = append(out, fmt.Sprintf("%s: two-way, %s → %s %d packets, back %d", iface, a, b, d[0], d[1]))
		}
	}
	return out
}

func center(i int) int { return gutter + i*colW + colW/2 }

// put writes s centred on position at, clipped to the buffer.
func put(b []rune, at int, s string) {
	r := []rune(s)
	start := at - len(r)/2
	for i, ch := range r {
		if p := start + i; p >= 0 && p < len(b) {
			b[p] = ch
		}
	}
}

func lanes(n, width int) string {
	b := []rune(strings.Repeat(" ", width))
	for i := 0; i < n; i++ {
		b[center(i)] = '|'
	}
	return strings.TrimRight(string(b), " ")
}

func labelRow(n, width, from, to int, label string) string {
	b := []rune(lanes(n, width) + strings.Repeat(" ", width))
	b = b[:width]
	lo, hi := center(min(from, to)), center(max(from, to))
	if lo == hi {
		hi = lo + colW/2
	}
	r := []rune(label)
	if room := hi - lo - 3; len(r) > room && room > 1 {
		r = append(r[:room-1], '…')
	}
	start := lo + 2
	if pad := (hi - lo - 1 - len(r)) / 2; pad > 1 {
		start = lo + 1 + pad
	}
	for i, ch := range r {
		if p := start + i; p < len(b) {
			b[p] = ch
		}
	}
	return strings.TrimRight(string(b), " ")
}

func arrowRow(n, width, from, to int, line rune) []rune {
	b := []rune(lanes(n, width) + strings.Repeat(" ", width))
	b = b[:width]
	lo, hi := center(min(from, to)), center(max(from, to))
	if lo == hi {
		// A message from an address to itself: a short loop mark.
		copy(b[lo+1:], []rune("<-'"))
		return b
	}
	for p := lo + 1; p < hi; p++ {
		b[p] = line
	}
	if to > from {
		b[hi-1] = '>'
	} else {
		b[lo+1] = '<'
	}
	return b
}

// UserOf is the user part of the first sip: URI in a header value:
// "alice" from `"Alice" <sip:alice@siplab.test>;tag=x`.
func UserOf(h string) string { return userOf(h) }
