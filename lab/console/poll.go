package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/trace/doctor"
	"github.com/siplab/siplab/trace/ladder"
)

// poller is the one reader of the lab every browser shares, in two loops
// that never wait for each other: the nodes' status every StatusEvery
// (soon after a button), and the capture folder every CaptureEvery (what
// the files gained read, the calls it changed rebuilt and sent).
type poller struct {
	cfg  Config
	hub  *Hub
	kick chan struct{}

	mu sync.Mutex
	// nodes and nodesErr are the last status round (the browser phone
	// reads the SBC's document).
	nodes    []labops.NodeStatus
	nodesErr error
	calls    []*ladder.Call
	// pages caches the drawn ladders by call version: every browser
	// fetches the same drawing after each event.
	pages map[string]string
}

func newPoller(cfg Config, hub *Hub) *poller {
	return &poller{cfg: cfg, hub: hub, kick: make(chan struct{}, 1)}
}

// Kick asks for a status poll now (after a button changed the lab).
func (p *poller) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *poller) run(ctx context.Context) {
	go p.captureLoop(ctx)
	p.statusLoop(ctx)
}

// stateDoc is the "state" event: every node with its daemon's document,
// and the browser calls read out of the SBC's (browsercalls.go).
type stateDoc struct {
	At           time.Time           `json:"at"`
	Error        string              `json:"error,omitempty"`
	Nodes        []labops.NodeStatus `json:"nodes"`
	BrowserCalls []browserCallDoc    `json:"browser_calls"`
	Took         string              `json:"took"`
}

// kickDelay is how long a status round after a button waits: two flushes
// of the capture points (200 ms) and a capture round.
const kickDelay = 500 * time.Millisecond

func (p *poller) statusLoop(ctx context.Context) {
	var last []byte
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
			// What the button put on the wire goes to the ladder first:
			// the status round (a docker exec per node, seconds of CPU on
			// a loaded machine) starts once the capture points have
			// flushed it and the capture loop has read it.
			select {
			case <-ctx.Done():
				return
			case <-time.After(kickDelay):
			}
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nodes, err := p.cfg.Lab.Status(sctx)
		cancel()
		p.mu.Lock()
		p.nodes, p.nodesErr = nodes, err
		p.mu.Unlock()
		doc := stateDoc{At: time.Now().UTC(), Nodes: nodes, BrowserCalls: browserCalls(nodes, time.Now()),
			Took: time.Since(start).Round(time.Millisecond).String()}
		if err != nil {
			doc.Error = err.Error()
		}
		b, jerr := json.Marshal(doc)
		if jerr != nil {
			p.cfg.Log.Error("console: state", "err", jerr)
		} else if !bytes.Equal(stripTook(b), stripTook(last)) {
			p.hub.Publish("state", b)
			last = b
		}
		// A slow read (a loaded machine) spaces the next one out: the
		// console must not be what loads it.
		t.Reset(max(p.cfg.StatusEvery, 2*time.Since(start)))
	}
}

// stripTook drops the fields that change on every poll when nothing else
// did, so an idle lab sends nothing.
func stripTook(b []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	delete(m, "at")
	delete(m, "took")
	out, _ := json.Marshal(m)
	return out
}

// callDoc is one call in the "calls" event.
type callDoc struct {
	N       int    `json:"n"`
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Summary string `json:"summary"`
	Start   string `json:"start"`
	Msgs    int    `json:"msgs"`
	Streams int    `json:"streams"`
	Packets int    `json:"packets"`
	// Version changes whenever the call's ladder would draw differently.
	Version string `json:"version"`
}

type evidenceDoc struct {
	CallN  int    `json:"call_n,omitempty"`
	CallID string `json:"call_id,omitempty"`
	N      int    `json:"n,omitempty"`
	Iface  string `json:"iface"`
	What   string `json:"what"`
}

type findingDoc struct {
	Rule     string        `json:"rule"`
	Severity string        `json:"severity"`
	Summary  string        `json:"summary"`
	Note     string        `json:"note,omitempty"`
	Fix      string        `json:"fix"`
	CallN    int           `json:"call_n,omitempty"`
	CallID   string        `json:"call_id,omitempty"`
	Evidence []evidenceDoc `json:"evidence,omitempty"`
}

type callsDoc struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
	// Delta: Calls holds only the calls that changed since the last
	// event, Order every call's number in order, and Findings is left out
	// when they did not change. A browser that connects gets the whole
	// list (Delta false) as the hub's last event.
	Delta    bool          `json:"delta,omitempty"`
	Calls    []callDoc     `json:"calls"`
	Order    []int         `json:"order,omitempty"`
	Findings *[]findingDoc `json:"findings,omitempty"`
	Took     string        `json:"took"`
	Rebuilt  int           `json:"rebuilt"`
}

// maxCalls bounds the call list sent to browsers (the newest).
const maxCalls = 40

// doctorEvery bounds how often the doctor reads the calls: its rules are
// for the reader of the findings, the ladder must not wait for them.
const doctorEvery = time.Second

// slowRound is a capture round worth a log line.
const slowRound = 500 * time.Millisecond

// doctorLoop runs the doctor on the newest calls it is handed, at most
// once per doctorEvery, in its own goroutine: however long the doctor
// takes, the ladder's loop never waits for it.
func doctorLoop(ctx context.Context, in <-chan []*ladder.Call, out chan<- []findingDoc) {
	for {
		var calls []*ladder.Call
		select {
		case <-ctx.Done():
			return
		case calls = <-in:
		}
		fs := []findingDoc{}
		if len(calls) > 0 {
			fs = findingDocs(doctor.Diagnose(calls, calls))
		}
		select {
		case <-ctx.Done():
			return
		case out <- fs:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(doctorEvery):
		}
	}
}

// captureLoop follows the capture folder: every CaptureEvery it reads
// what the files gained (labops.Follow: only the new blocks, only the
// calls they changed) and sends the browsers the calls that changed.
func (p *poller) captureLoop(ctx context.Context) {
	dir := p.cfg.Lab.CaptureDir()
	f := labops.Follow(dir, true)
	toDoctor, fromDoctor := make(chan []*ladder.Call, 1), make(chan []findingDoc)
	go doctorLoop(ctx, toDoctor, fromDoctor)
	var (
		lastRound time.Time
		took      time.Duration
		sent      map[int]string // call number → version the browsers have
		order     []int          // the call numbers they have
		findings  []findingDoc
		calls     []*ladder.Call
		lastErr   string
		published bool
	)
	t := time.NewTicker(p.cfg.CaptureEvery)
	defer t.Stop()
	for {
		var newFindings []findingDoc
		select {
		case <-ctx.Done():
			return
		case newFindings = <-fromDoctor:
		case <-t.C:
		}
		if newFindings != nil {
			if findings != nil && reflect.DeepEqual(newFindings, findings) {
				continue
			}
			findings = newFindings
		} else if time.Since(lastRound) < 2*took {
			// A round that takes long is followed by a pause as long: the
			// poller never takes more than half a core. (Not longer: a
			// round's work is what the files gained, a longer pause only
			// makes the next round longer.)
			continue
		}
		start := time.Now()
		var round labops.FollowRound
		errText := lastErr
		if newFindings == nil {
			var err error
			calls, round, err = f.Read()
			lastRound, took = start, time.Since(start)
			errText = ""
			if err != nil {
				errText = err.Error()
				calls = nil
			}
			if took > slowRound {
				// Where the time went, for whoever wonders why the ladder lags.
				p.cfg.Log.Info("console: slow capture round", "took", took, "read", round.Read, "bytes", round.Bytes,
					"build", round.Build, "rebuilt", round.Rebuilt, "calls", len(calls), "gone", round.Gone, "reset", round.Reset)
			}
			if published && !round.Changed && errText == lastErr {
				continue
			}
			if err != nil && errText != lastErr && !errors.Is(err, ladder.ErrNoCalls) {
				p.cfg.Log.Warn("console: reading the captures", "dir", dir, "err", err)
			}
			p.mu.Lock()
			p.calls = calls
			p.mu.Unlock()
			// The doctor gets the newest calls (a stale hand-over is
			// replaced).
			select {
			case <-toDoctor:
			default:
			}
			toDoctor <- calls
		}
		var invites []*ladder.Call
		for _, c := range calls {
			if c.IsInvite() {
				invites = append(invites, c)
			}
		}
		full := callsDoc{At: time.Now().UTC(), Error: errText, Calls: []callDoc{}, Rebuilt: round.Rebuilt}
		delta := full
		delta.Delta, delta.Calls, delta.Order = true, []callDoc{}, []int{}
		now := map[int]string{}
		for _, c := range invites[max(0, len(invites)-maxCalls):] {
			d := describe(c)
			full.Calls = append(full.Calls, d)
			delta.Order = append(delta.Order, d.N)
			if sent[d.N] != d.Version {
				delta.Calls = append(delta.Calls, d)
			}
			now[d.N] = d.Version
		}
		sent = now
		if findings == nil {
			findings = []findingDoc{}
		}
		full.Findings = &findings
		if newFindings != nil {
			delta.Findings = &findings
		}
		full.Took = took.Round(time.Millisecond).String()
		delta.Took = full.Took
		bf, err := json.Marshal(full)
		if err != nil {
			p.cfg.Log.Error("console: calls", "err", err)
			continue
		}
		bd := bf
		if published && errText == "" && lastErr == "" {
			if len(delta.Calls) == 0 && delta.Findings == nil && slices.Equal(order, delta.Order) {
				continue // nothing a browser shows changed
			}
			if bd, err = json.Marshal(delta); err != nil {
				p.cfg.Log.Error("console: calls", "err", err)
				continue
			}
		}
		order = delta.Order
		p.hub.PublishDelta("calls", bf, bd)
		published, lastErr = true, errText
	}
}

func describe(c *ladder.Call) callDoc {
	d := callDoc{N: c.N, ID: c.ID, Kind: c.Kind(), State: c.State(), Summary: c.Summary(),
		Start: c.Start.UTC().Format("15:04:05"), Msgs: len(c.Messages), Streams: len(c.Streams)}
	for _, s := range c.Streams {
		d.Packets += s.Packets
	}
	// A browser call's STUN draws too: its messages, its counted repeats.
	stun := len(c.STUN)
	for _, r := range c.STUNRuns {
		stun += r.Exchanges + r.Retransmits
	}
	d.Version = fmt.Sprintf("%d.%d.%d.%d.%d", d.Msgs, d.Streams, d.Packets, stun, c.End.UnixNano())
	return d
}

func findingDocs(fs []doctor.Finding) []findingDoc {
	out := []findingDoc{}
	for _, f := range fs {
		if f.Severity < doctor.Warning {
			continue
		}
		d := findingDoc{Rule: f.Rule, Severity: f.Severity.String(), Summary: f.Summary, Note: f.Note, Fix: f.Fix}
		if f.Call != nil {
			d.CallN, d.CallID = f.Call.N, f.Call.ID
		}
		for _, e := range f.Evidence {
			ed := evidenceDoc{N: e.N, Iface: e.Iface, What: e.What}
			if e.Call == "" {
				ed.CallN, ed.CallID = d.CallN, d.CallID
			} else {
				ed.CallID = e.Call
			}
			d.Evidence = append(d.Evidence, ed)
		}
		out = append(out, d)
	}
	// Errors first, then the newest call.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity == doctor.Error.String()
		}
		return out[i].CallN > out[j].CallN
	})
	return out
}

// call finds a call of the last build by number or Call-ID.
func (p *poller) call(sel string) (*ladder.Call, error) {
	p.mu.Lock()
	calls := p.calls
	p.mu.Unlock()
	if len(calls) == 0 {
		return nil, fmt.Errorf("no calls captured yet in %s", filepath.Clean(p.cfg.Lab.CaptureDir()))
	}
	return ladder.Find(calls, sel)
}

// page is call c's ladder page (ladder.WriteHTML, the frame's stylesheet
// added), drawn once per version of the call.
func (p *poller) page(c *ladder.Call) (string, error) {
	key := describe(c).Version + "|" + c.ID
	p.mu.Lock()
	html, ok := p.pages[key]
	p.mu.Unlock()
	if ok {
		return html, nil
	}
	var b bytes.Buffer
	if err := ladder.WriteHTML(&b, c); err != nil {
		return "", err
	}
	html = strings.Replace(b.String(), "</head>", `<link rel="stylesheet" href="/static/ladder-frame.css"></head>`, 1)
	p.mu.Lock()
	if len(p.pages) > 16 {
		p.pages = nil
	}
	if p.pages == nil {
		p.pages = map[string]string{}
	}
	p.pages[key] = html
	p.mu.Unlock()
	return html, nil
}
