// Package scenario plays the training page's call flows (module 05) live
// in the Docker lab, one command each, and reads their ladders back from
// the captures: basic, busy, cancel, auth, hold, transfer, mismatch and
// no-ack. Each scenario is data (what it teaches, the messages its ladder
// must show, in order) plus the phone commands that make it happen; Run
// plays one and checks its ladder, so a scenario doubles as an exercise
// check.
package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/uaclient"
)

// ErrUnknown is returned for a scenario name not in List.
var ErrUnknown = errors.New("scenario: unknown scenario")

// Expect is one message the ladder must show: a request method
// ("INVITE") or a response as code/method ("486/INVITE"). Times is the
// least number of separate sends (retransmissions count; one packet seen
// at several capture points counts once); 0 means 1.
type Expect struct {
	Msg   string `json:"msg"`
	Times int    `json:"times,omitempty"`
}

func (e Expect) String() string {
	if e.Times > 1 {
		return fmt.Sprintf("%s ×%d", e.Msg, e.Times)
	}
	return e.Msg
}

// Scenario is one call flow.
type Scenario struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Teaches is what the ladder shows, in one sentence.
	Teaches string `json:"teaches"`
	// Expect lists the messages the ladder shows, in this order (other
	// messages may come between).
	Expect []Expect `json:"expect"`
	// Takes is about how long the scenario runs.
	Takes time.Duration `json:"takes"`
	steps []step
}

// List is every scenario, in the training page's order.
func List() []Scenario { return slices.Clone(all) }

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, error) {
	for _, s := range all {
		if s.Name == strings.ToLower(strings.TrimSpace(name)) {
			return s, nil
		}
	}
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	return Scenario{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(names, ", "))
}

// Result is what Run played and saw.
type Result struct {
	Scenario string `json:"scenario"`
	// Commands are the siplab commands that played it, as an intern would
	// type them.
	Commands []string `json:"commands"`
	// CallIDs are the dialogs the scenario made (a transfer makes two; the
	// auth scenario's is the REGISTER's).
	CallIDs []string `json:"call_ids"`
	// Ladders are those dialogs as captured from the scenario's start.
	Ladders []*ladder.Call `json:"-"`
	// Seen is every message of the ladders in order (code/method for
	// responses), one per send.
	Seen []string `json:"seen"`
	// Missing are the expected messages the ladder did not show; empty
	// when the scenario played as the training page draws it.
	Missing []string `json:"missing"`
}

// OK reports whether the ladder showed every expected message.
func (r Result) OK() bool { return len(r.Missing) == 0 }

// Config is how Run reaches the lab.
type Config struct {
	Runner *labctl.Runner
	// Names labels the ladder's columns (the lab's address plan).
	Names ladder.Names
	// CaptureDir is the lab's capture folder; empty = Runner.Dir/captures.
	CaptureDir string
	// Out gets each command as it is played ("$ siplab call alice bob");
	// nil = quiet.
	Out io.Writer
}

// Run plays scenario name in the running lab and reads its ladder back.
// The settings a scenario changes are put back to their defaults when it
// ends, whatever happened. An error means the scenario could not be
// played; a ladder missing expected messages is reported in Result.Missing.
func Run(ctx context.Context, cfg Config, name string) (Result, error) {
	s, err := Lookup(name)
	if err != nil {
		return Result{}, err
	}
	e := &env{r: cfg.Runner, out: cfg.Out, res: Result{Scenario: s.Name}}
	if e.out == nil {
		e.out = io.Discard
	}
	start := time.Now()
	for _, st := range s.steps {
		if err = st(ctx, e); err != nil {
			break
		}
	}
	// Restore what the scenario changed, even after a failure.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for i := len(e.undo) - 1; i >= 0; i-- {
		if uerr := e.undo[i](rctx); uerr != nil && err == nil {
			err = uerr
		}
	}
	if err != nil {
		return e.res, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	dir := cfg.CaptureDir
	if dir == "" {
		dir = filepath.Join(cfg.Runner.Dir, "captures")
	}
	calls, err := readLadders(ctx, dir, cfg.Names, e.res.CallIDs, start, s.Expect)
	if err != nil {
		return e.res, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	e.res.Ladders = calls
	e.res.Seen = seen(calls)
	e.res.Missing = missing(e.res.Seen, s.Expect)
	return e.res, nil
}

// readLadders finds the scenario's dialogs in the captures, waiting for
// the capture writers to flush (every 200 ms) until every expected message
// shows up, and trims each to what happened from start. The last step's
// messages (the BYE of a hang-up that returned at once) may still be in a
// writer's buffer when the dialog itself is already on disk, so finding
// the Call-ID is not enough. After 5 s it returns what it has: the caller
// reports what is missing.
func readLadders(ctx context.Context, dir string, names ladder.Names, ids []string, start time.Time, expect []Expect) ([]*ladder.Call, error) {
	var last error
	var found []*ladder.Call
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls, err := loadTrimmed(dir, names, ids, start)
		if err == nil {
			found = calls
			if len(missing(seen(calls), expect)) == 0 {
				return calls, nil
			}
		}
		last = err
		if time.Now().After(deadline) {
			if found != nil {
				return found, nil
			}
			return nil, last
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func loadTrimmed(dir string, names ladder.Names, ids []string, start time.Time) ([]*ladder.Call, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no captures in %s", dir)
	}
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	all := ladder.Build(tr, names)
	var out []*ladder.Call
	for _, id := range ids {
		var found *ladder.Call
		for _, c := range all {
			if slices.Contains(c.CallIDs, id) || c.ID == id {
				found = c
			}
		}
		if found == nil {
			return nil, fmt.Errorf("Call-ID %s not in the captures yet", id)
		}
		t := trim(found, start)
		if len(t.Messages) == 0 {
			return nil, fmt.Errorf("Call-ID %s: nothing captured since the scenario began", id)
		}
		out = append(out, t)
	}
	return out, nil
}

// trim is c from start on: a phone's REGISTERs share one Call-ID for
// hours, the scenario's are the last ones.
func trim(c *ladder.Call, start time.Time) *ladder.Call {
	t := *c
	t.Messages = nil
	for _, m := range c.Messages {
		if !m.Time.Before(start) {
			t.Messages = append(t.Messages, m)
		}
	}
	t.Streams = nil
	for _, s := range c.Streams {
		if !s.Last.Before(start) {
			t.Streams = append(t.Streams, s)
		}
	}
	if len(t.Messages) > 0 {
		t.Start = t.Messages[0].Time
	}
	return &t
}

// key is a message as Expect names it.
func key(m ladder.Message) string {
	if m.Request {
		return m.Method
	}
	return fmt.Sprintf("%d/%s", m.Status, m.Method)
}

// sendGap separates two sends of one message: one packet crosses every
// capture point within milliseconds, a retransmission comes T1 (500 ms)
// or more later.
const sendGap = 150 * time.Millisecond

// seen lists each message once per send, in time order: the copies of one
// packet at several capture points (phone, router LAN and WAN, proxy)
// fold into the first.
func seen(calls []*ladder.Call) []string {
	type send struct {
		key string
		at  time.Time
	}
	var msgs []ladder.Message
	for _, c := range calls {
		msgs = append(msgs, c.Messages...)
	}
	slices.SortStableFunc(msgs, func(a, b ladder.Message) int { return a.Time.Compare(b.Time) })
	var out []string
	// One send is one (message, CSeq): the REGISTER answering a 401, or
	// the ACK of a 488 right after the ACK of a 407, is a new CSeq.
	lastAt := map[string]time.Time{}
	for _, m := range msgs {
		k := key(m)
		id := k + "|" + m.Header("CSeq")
		if at, ok := lastAt[id]; ok && m.Time.Sub(at) < sendGap {
			lastAt[id] = m.Time
			continue
		}
		lastAt[id] = m.Time
		out = append(out, k)
	}
	return out
}

// missing checks exp as a subsequence of seen.
func missing(seen []string, exp []Expect) []string {
	var miss []string
	i := 0
	for _, e := range exp {
		want := max(e.Times, 1)
		got := 0
		j := i
		for ; j < len(seen) && got < want; j++ {
			if seen[j] == e.Msg {
				got++
			}
		}
		if got < want {
			miss = append(miss, fmt.Sprintf("%s (seen %d)", e, got))
			continue
		}
		i = j
	}
	return miss
}

// env plays one scenario: phone commands inside the lab's containers.
type env struct {
	r    *labctl.Runner
	out  io.Writer
	res  Result
	undo []func(context.Context) error
	// caller placed c, the scenario's call (flows.go's steps).
	caller string
	c      uaclient.CallStatus
}

// say records and prints a command as an intern would type it.
func (e *env) say(cmd string) {
	e.res.Commands = append(e.res.Commands, cmd)
	fmt.Fprintf(e.out, "  $ %s\n", cmd)
}

// phone runs the phone CLI with args (-json added) and decodes into out.
func (e *env) phone(ctx context.Context, name string, out any, args ...string) error {
	n, err := e.r.Node(ctx, name)
	if err != nil {
		return err
	}
	full := append([]string{n.Binary}, args[0], "-json")
	full = append(full, args[1:]...)
	raw, err := e.r.Exec(ctx, n, full...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	return nil
}

// set changes a phone setting for the scenario and puts its default
// back when the scenario ends.
func (e *env) set(ctx context.Context, phone, name, value string) error {
	e.say(fmt.Sprintf("siplab set %s %s %s", phone, name, value))
	if err := e.phone(ctx, phone, nil, "set", name, value); err != nil {
		return err
	}
	e.undo = append(e.undo, func(ctx context.Context) error {
		e.say(fmt.Sprintf("siplab set %s %s default", phone, name))
		return e.phone(ctx, phone, nil, "set", name, "default")
	})
	return nil
}

// call places a call and returns the caller's call.
func (e *env) call(ctx context.Context, from, to string) (uaclient.CallStatus, error) {
	e.say(fmt.Sprintf("siplab call %s %s", from, to))
	var c uaclient.CallStatus
	if err := e.phone(ctx, from, &c, "call", to); err != nil {
		return c, err
	}
	e.res.CallIDs = append(e.res.CallIDs, c.CallID)
	// Whatever happens next, the scenario's call does not outlive it.
	e.undo = append(e.undo, func(ctx context.Context) error {
		var st uaclient.CallStatus
		if e.phone(ctx, from, &st, "wait", "call-state", "terminated", c.ID, "-timeout", "1s") == nil {
			return nil
		}
		e.phone(ctx, from, nil, "hangup", c.ID, "-timeout", "5s")
		return nil
	})
	return c, nil
}

// wait blocks until phone's call (id, "" = the newest) reaches state.
func (e *env) wait(ctx context.Context, phone, id string, state uaclient.CallState, timeout time.Duration) (uaclient.CallStatus, error) {
	var w uaclient.WaitResult
	args := []string{"wait", "-timeout", timeout.String(), "call-state", string(state)}
	if id != "" {
		args = append(args, id)
	}
	if err := e.phone(ctx, phone, &w, args...); err != nil {
		return uaclient.CallStatus{}, err
	}
	if w.Call == nil {
		return uaclient.CallStatus{}, fmt.Errorf("%s: no call", phone)
	}
	if w.Call.State != state {
		return *w.Call, fmt.Errorf("%s: call %s is %s (%d %s), not %s", phone, w.Call.ID, w.Call.State, w.Call.Code, w.Call.Reason, state)
	}
	return *w.Call, nil
}

// verb runs a call verb (answer, reject, cancel, hangup, hold, resume)
// and prints it.
func (e *env) verb(ctx context.Context, phone, verb string, args ...string) (uaclient.CallStatus, error) {
	e.say(strings.TrimSpace(fmt.Sprintf("siplab %s %s %s", verb, phone, strings.Join(args, " "))))
	var c uaclient.CallStatus
	err := e.phone(ctx, phone, &c, append([]string{verb}, args...)...)
	return c, err
}

// pause lets media flow so the ladder shows RTP between the signalling.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
