package ladder

import (
	"fmt"
	"html/template"
	"io"
)

// WriteHTML writes the ladder as one self-contained HTML page: inline CSS,
// an inline SVG diagram, and each message's full text in a <details>
// element, so the page opens anywhere (mail, a ticket) without JavaScript.
func WriteHTML(w io.Writer, c *Call) error {
	const (
		colPx  = 170
		rowPx  = 34
		headPx = 78
		left   = 70
	)
	type col struct {
		X                 int
		Title, Role, Addr string
		Private           bool
	}
	type row struct {
		Y, X1, X2, LX, N   int
		Label, Time, Where string
		RTP, Left          bool
		Anchor             string
	}
	type msg struct {
		N                        int
		Time, Label, Where, Text string
	}
	var cols []col
	for i, cl := range c.Columns {
		cols = append(cols, col{X: left + i*colPx + colPx/2, Title: cl.Title(), Role: cl.Host.Role, Addr: cl.Addr.String(), Private: cl.Private()})
	}
	var rows []row
	var msgs []msg
	for i, e := range c.events() {
		r := row{Y: headPx + (i+1)*rowPx, Time: fmt.Sprintf("%.3f", e.at.Sub(c.Start).Seconds())}
		var from, to int
		if m := e.msg; m != nil {
			from, to = m.From, m.To
			r.Label, r.N, r.Anchor = m.Label, e.n, fmt.Sprintf("m%d", e.n)
			if m.SDP {
				r.Label += " (SDP)"
			}
			r.Where = fmt.Sprintf("%s %s → %s", m.Where(), m.Src, m.Dst)
			msgs = append(msgs, msg{N: e.n, Time: r.Time, Label: r.Label, Where: r.Where, Text: string(m.Payload)})
		} else {
			s := e.stream
			from, to = s.From, s.To
			r.RTP = true
			r.Label = fmt.Sprintf("RTP %s %d pkts, lost %d", PayloadName(s.PayloadType), s.Packets, s.Lost)
			r.Where = fmt.Sprintf("%s %s → %s", s.Where(), s.Src, s.Dst)
		}
		r.X1, r.X2 = cols[from].X, cols[to].X
		r.Left = to < from
		r.LX = (r.X1 + r.X2) / 2
		rows = append(rows, r)
	}
	data := struct {
		Call    *Call
		Summary string
		Cols    []col
		Rows    []row
		Msgs    []msg
		W, H    int
		Verdict []string
		Streams []Stream
	}{c, c.Summary(), cols, rows, msgs, left + len(cols)*colPx + 20, headPx + (len(rows)+2)*rowPx, c.MediaVerdict(), c.Streams}
	return htmlTmpl.Execute(w, data)
}

var htmlTmpl = template.Must(template.New("ladder").Funcs(template.FuncMap{
	"add":   func(a, b int) int { return a + b },
	"pt":    PayloadName,
	"title": func(c *Call, i int) string { return c.Columns[i].Title() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>siplab ladder — {{.Call.ID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.1em;font-family:monospace}
svg text{font-family:monospace;font-size:12px}
.lane{stroke:#999;stroke-dasharray:4 3}
.sip{stroke:#1a5fb4;stroke-width:1.5}
.rtp{stroke:#26a269;stroke-width:3}
.priv{fill:#c01c28}
.pub{fill:#1a5fb4}
.where{fill:#777;font-size:10px}
details{margin:.2em 0}
summary{font-family:monospace;cursor:pointer}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
table{border-collapse:collapse;font-family:monospace;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px}
</style></head><body>
<h1>Call {{.Call.ID}}</h1>
<p>{{.Summary}}{{if gt (len .Call.CallIDs) 1}}<br>grouped Call-IDs: {{range $i, $id := .Call.CallIDs}}{{if $i}}, {{end}}{{$id}}{{end}}{{end}}</p>
<p>Addresses in <span style="color:#c01c28">red</span> are private: seen on the internet side, they are the bug.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}">
<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#1a5fb4"/></marker>
<marker id="r" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#26a269"/></marker></defs>
{{range .Cols}}<text x="{{.X}}" y="16" text-anchor="middle" font-weight="bold">{{.Title}}</text>
<text x="{{.X}}" y="32" text-anchor="middle">{{.Role}}</text>
<text x="{{.X}}" y="48" text-anchor="middle" class="{{if .Private}}priv{{else}}pub{{end}}">{{.Addr}}</text>
<line class="lane" x1="{{.X}}" y1="58" x2="{{.X}}" y2="{{$.H}}"/>
{{end}}{{range .Rows}}<text x="4" y="{{.Y}}">{{.Time}}</text>
<line class="{{if .RTP}}rtp{{else}}sip{{end}}" x1="{{.X1}}" y1="{{.Y}}" x2="{{if .Left}}{{add .X2 2}}{{else}}{{add .X2 -2}}{{end}}" y2="{{.Y}}" marker-end="url(#{{if .RTP}}r{{else}}a{{end}})"/>
{{if .Anchor}}<a href="#{{.Anchor}}"><text x="{{.LX}}" y="{{add .Y -4}}" text-anchor="middle">{{.N}} {{.Label}}</text></a>{{else}}<text x="{{.LX}}" y="{{add .Y -4}}" text-anchor="middle">{{.Label}}</text>{{end}}
<text x="{{.LX}}" y="{{add .Y 11}}" text-anchor="middle" class="where">{{.Where}}</text>
{{end}}</svg>
{{if .Streams}}<h2>RTP streams</h2>
<table><tr><th>capture point</th><th>from</th><th>to</th><th>codec</th><th>SSRC</th><th>packets</th><th>lost</th></tr>
{{range .Streams}}<tr><td>{{.Iface}}</td><td>{{title $.Call .From}} {{.Src}}</td><td>{{title $.Call .To}} {{.Dst}}</td><td>{{pt .PayloadType}}</td><td>{{printf "%08x" .SSRC}}</td><td>{{.Packets}}</td><td>{{.Lost}}</td></tr>
{{end}}</table>
{{range .Verdict}}<p>{{.}}</p>{{end}}{{end}}
<h2>Messages</h2>
{{range .Msgs}}<details id="m{{.N}}"><summary>{{.N}} · {{.Time}} s · {{.Label}} · {{.Where}}</summary><pre>{{.Text}}</pre></details>
{{end}}</body></html>
`))
