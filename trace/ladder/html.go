package ladder

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"strings"

	"github.com/siplab/siplab/trace/explain"
)

// The page's CSS and template are files so they read (and diff) as what
// they are; go:embed keeps the binary, and the page, self-contained.
//
//go:embed html/ladder.css html/ladder.tmpl
var htmlFiles embed.FS

var htmlTmpl = template.Must(template.New("ladder.tmpl").Funcs(template.FuncMap{
	"pt": PayloadName,
	"css": func() template.CSS {
		b, err := htmlFiles.ReadFile("html/ladder.css")
		if err != nil {
			panic(err) // embedded at build time: cannot fail at run time
		}
		return template.CSS(b)
	},
}).ParseFS(htmlFiles, "html/ladder.tmpl"))

// Address zones, the three colours of the page: a site's LAN (private, must
// never show on the internet side), the platform's core (private too, but
// behind the proxy, SBC and PBX: never seen by a site), and the internet.
const (
	zoneSite   = "site"
	zoneCore   = "core"
	zonePublic = "public"
)

// zoneOf places an address: public when routable; private on a phone or a
// router's LAN side is a site address; private on any other named node (the
// proxy's core side, the registrar, the PBX, the SBC) is the platform core.
// An unnamed private address is taken for a site one: the lab's core is
// fully named, a stray LAN is not.
func zoneOf(a netip.Addr, h Host) string {
	if !(a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()) {
		return zonePublic
	}
	if h.Name == "" || strings.HasPrefix(h.Role, "phone") || strings.HasPrefix(h.Role, "router") {
		return zoneSite
	}
	return zoneCore
}

type htmlAddr struct {
	Addr, Zone string
}

type htmlCol struct {
	Title, Role string
	Addrs       []htmlAddr
}

// htmlLeg is one dialog of a call that crosses a B2BUA (each side of the
// PBX or SBC has its own Call-ID).
type htmlLeg struct {
	N             int
	Label, CallID string
	Class         string
}

// htmlRow is one arrow: a SIP message or the start of an RTP stream, with
// what its expanded panel shows.
type htmlRow struct {
	N          int // message number, 0 for RTP
	Time       string
	Kind       string // "req", "resp", "rtp"
	Label, SDP string
	// Problem: explain flags a line that breaks the call here (red);
	// Note: only lines something else repairs today (amber).
	Problem, Note bool
	NAT           []natPiece // the router's translation, in pieces that wrap as units
	NATText       string
	ALG           string // what the router's ALG rewrote
	Leg           *htmlLeg
	Lifelines     []template.CSS
	LabelBox      template.CSS // where the label sits: the gap next to the sender
	Arrow         template.CSS
	Dir           string // "r" (to the right), "l", or "self"
	Where         string // capture point
	Also          []string
	Src, Dst      string
	Side          string
	Lines         []htmlLine
	Raw           string // when explain cannot read the message
	Stream        *Stream
	Codec         string
	STUN          *htmlSTUN // a STUN message or run (stun.go)
}

// WriteHTML writes the ladder as one self-contained HTML page for the
// projector: inline CSS, no script, no external file. The drawing is HTML
// laid out in percentages of the window (it scales with it, the type does
// not shrink), and every arrow is a <details> row: a click opens the
// message line by line with explain's notes, the RTP stream's figures.
func WriteHTML(w io.Writer, c *Call) error {
	n := len(c.Columns)
	x := func(i int) float64 { return (float64(i) + 0.5) * 100 / float64(max(n, 1)) }
	var cols []htmlCol
	for _, cl := range c.Columns {
		hc := htmlCol{Title: cl.Title(), Role: cl.Host.Role}
		for _, a := range cl.Addrs {
			hc.Addrs = append(hc.Addrs, htmlAddr{Addr: a.String(), Zone: zoneOf(a, cl.Host)})
		}
		cols = append(cols, hc)
	}
	var lifelines []template.CSS
	for i := range n {
		lifelines = append(lifelines, template.CSS(fmt.Sprintf("left:%.3f%%", x(i))))
	}
	// Legs are told apart only when there are several (a B2BUA's).
	legs := map[int]*htmlLeg{}
	var legList []*htmlLeg
	if len(c.Legs) > 1 {
		for _, l := range c.Legs {
			hl := &htmlLeg{N: l.N, Label: l.Label(), CallID: l.CallID, Class: fmt.Sprintf("leg%d", (l.N-1)%6)}
			legs[l.N] = hl
			legList = append(legList, hl)
		}
	}
	place := func(r *htmlRow, from, to int) {
		r.Lifelines = lifelines
		lo, hi := min(from, to), max(from, to)
		switch {
		case from == to:
			r.Dir = "self"
			r.Arrow = template.CSS(fmt.Sprintf("left:%.3f%%;width:%.3f%%", x(from), 50/float64(n)))
		case to > from:
			r.Dir = "r"
		default:
			r.Dir = "l"
		}
		if from != to {
			r.Arrow = template.CSS(fmt.Sprintf("left:%.3f%%;width:%.3f%%", x(lo), x(hi)-x(lo)))
		}
		// The label fills the gap next to the sender, never more: an arrow
		// that spans several columns keeps its label clear of the lifelines
		// it crosses.
		gap := from
		if to < from {
			gap = from - 1
		}
		if from == to && from == n-1 {
			gap = from - 1
		}
		gap = max(0, min(gap, n-2))
		if n == 1 {
			r.LabelBox = template.CSS("margin-left:0;width:100%")
		} else {
			r.LabelBox = template.CSS(fmt.Sprintf("margin-left:%.3f%%;width:%.3f%%", x(gap), x(gap+1)-x(gap)))
		}
	}
	var rows []htmlRow
	for _, e := range c.events() {
		r := htmlRow{Time: fmt.Sprintf("%.3f", e.at.Sub(c.Start).Seconds())}
		if m := e.msg; m != nil {
			r.N, r.Label, r.Kind = e.n, m.Label, "resp"
			if m.Request {
				r.Kind = "req"
			}
			if m.SDP {
				r.SDP = "SDP"
			}
			r.Where, r.Also = m.Iface, m.Also()
			r.Src, r.Dst = m.Src.String(), m.Dst.String()
			r.Side = "a private side (a LAN or the platform core): private addresses are normal here"
			if PublicSide(m.Iface) {
				r.Side = "the internet side: a private address here is a bug"
			}
			lines, err := explain.Message(m.Payload, explain.Context{Public: PublicSide(m.Iface)})
			if err != nil {
				r.Raw = string(m.Payload)
			}
			for _, l := range lines {
				hl := htmlLine{Line: l}
				for _, p := range l.Problems {
					note := repaired(p)
					hl.Flags = append(hl.Flags, htmlFlag{Text: p, Note: note})
					r.Problem = r.Problem || !note
					r.Note = r.Note || note
				}
				r.Lines = append(r.Lines, hl)
			}
			r.Leg = legs[m.Leg]
			r.NAT, r.NATText, r.ALG = natPieces(m.NAT), m.NAT, m.ALG
			// A router that rewrote the SIP text is the bug wherever it
			// happens, whatever the lines now say.
			r.Problem = r.Problem || m.ALG != ""
			place(&r, m.From, m.To)
		} else if e.stream == nil {
			from, to := stunHTMLRow(&r, e, c.Start)
			place(&r, from, to)
		} else {
			s := *e.stream
			r.Kind, r.Stream, r.Codec = "rtp", &s, PayloadName(s.PayloadType)
			r.Label = "RTP " + r.Codec
			r.NAT, r.NATText = natPieces(s.NAT), s.NAT
			r.Where, r.Src, r.Dst = s.Iface, s.Src.String(), s.Dst.String()
			for _, p := range s.points() {
				if p != s.Iface {
					r.Also = append(r.Also, p)
				}
			}
			place(&r, s.From, s.To)
		}
		rows = append(rows, r)
	}
	data := struct {
		Call    *Call
		Summary string
		Cols    []htmlCol
		N       int
		Rows    []htmlRow
		Legs    []*htmlLeg
		Verdict []string
		Streams []Stream
	}{c, c.Summary(), cols, n, rows, legList, c.MediaVerdict(), c.Streams}
	return htmlTmpl.Execute(w, data)
}

// htmlLine is one explained line, its flags sorted into problems and notes.
type htmlLine struct {
	explain.Line
	Flags []htmlFlag
}

type htmlFlag struct {
	Text string
	Note bool
}

// repaired tells explain's flags that something in the lab repairs today
// (a private Contact the proxy rewrites from the source address: the
// doctor's note) from those that break the call where they are seen. It
// reads explain's own wording, so a reworded flag falls back to red: an
// alarm too many, never one too few.
func repaired(problem string) bool {
	return strings.Contains(problem, "unless the proxy fixes it up")
}

// natPiece is one line of a translation's box: an address, cut before its
// port so a lane too narrow for it wraps at the colon, not inside a number.
type natPiece struct{ Host, Port string }

// natPieces lays a translation out as lines: "192.168.1.50:5060" then
// "⇒ 203.0.113.2:5060" (and the same for a second translated address), so
// every box reads alike whatever the lane's width. "to A ⇒ B" (the
// destination, inbound) reads the same without "to" on the arrow into the
// LAN; the panel keeps the full text.
func natPieces(nat string) []natPiece {
	if nat == "" {
		return nil
	}
	var out []natPiece
	add := func(s string) {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			out = append(out, natPiece{Host: s})
			return
		}
		out = append(out, natPiece{Host: s[:i+1], Port: s[i+1:]})
	}
	for _, part := range strings.Split(nat, ", ") {
		part = strings.TrimPrefix(part, "to ")
		before, after, ok := strings.Cut(part, " ⇒ ")
		if !ok {
			add(part)
			continue
		}
		add(before)
		add("⇒\u00a0" + after)
	}
	return out
}
