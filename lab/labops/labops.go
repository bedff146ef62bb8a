// Package labops is what the siplab verbs do to the running lab, shared by
// the command line (cmd/siplab) and the classroom console (console): read
// every node's status, run a phone verb, change a live setting, load the
// captured calls, drive the exercises. Everything runs the daemons' own
// subcommands inside their containers through labctl (argv, never a shell).
package labops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/siplab/siplab/internal/cli/natroutercli"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/ladder"
)

// ErrUsage marks a request the verb cannot take (wrong arguments).
var ErrUsage = errors.New("usage")

// NodeStatus is one node in `siplab status -json`.
type NodeStatus struct {
	labctl.Node
	// Daemon is the node daemon's own `status -json` document.
	Daemon json.RawMessage `json:"daemon,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// statusParallel bounds the status reads running at once.
const statusParallel = 3

// Status reads every node of the running lab and its daemon's status
// document (a node whose daemon does not answer carries the error).
func Status(ctx context.Context, r *labctl.Runner) ([]NodeStatus, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, labctl.NotUp(ctx)
	}
	all := make([]NodeStatus, len(nodes))
	// A few daemons answer at once: a status is a docker exec each, and a
	// dozen execs at once cost more than the lab's 2 cores give.
	done := make(chan struct{}, len(nodes))
	slots := make(chan struct{}, statusParallel)
	for i, n := range nodes {
		all[i] = NodeStatus{Node: n}
		go func() {
			slots <- struct{}{}
			defer func() { <-slots; done <- struct{}{} }()
			if n.Running && n.Binary != "" {
				var raw json.RawMessage
				if err := r.Status(ctx, n, &raw); err != nil {
					all[i].Error = err.Error()
				} else {
					all[i].Daemon = raw
				}
			}
		}()
	}
	for range nodes {
		<-done
	}
	return all, nil
}

// PhoneVerbs are the verbs a phone (or the carrier) takes from siplab:
// each is the phone daemon's own subcommand.
var PhoneVerbs = []string{"call", "answer", "reject", "cancel", "hangup", "hold", "resume", "transfer", "dtmf", "options"}

// IsPhoneVerb tells whether verb is one of PhoneVerbs.
func IsPhoneVerb(verb string) bool { return slices.Contains(PhoneVerbs, verb) }

// Phone runs a phone verb inside the phone's container: the phone's own CLI
// is the single implementation, siplab only finds the container. args[0]
// is the phone; the output is what the phone printed.
func Phone(ctx context.Context, r *labctl.Runner, verb string, args []string) ([]byte, error) {
	if !IsPhoneVerb(verb) {
		return nil, fmt.Errorf("%w: %q is not a phone verb (%s)", ErrUsage, verb, strings.Join(PhoneVerbs, ", "))
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: %s needs a phone name", ErrUsage, verb)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return nil, err
	}
	// The carrier places and answers PSTN calls with the same verbs.
	if n.Role != "phone" && n.Role != "carrier" {
		return nil, fmt.Errorf("%s is a %s, not a phone", n.Name, n.Role)
	}
	return Exec(ctx, r, n, append([]string{verb}, args[1:]...))
}

// Exec runs the node's daemon binary with args and returns its output.
func Exec(ctx context.Context, r *labctl.Runner, n labctl.Node, args []string) ([]byte, error) {
	return r.Exec(ctx, n, append([]string{n.Binary}, args...)...)
}

// Set changes one live setting of a node and returns what to show: for a
// router, the change and the mappings it dropped, naming the lab hosts
// behind them (a phone whose mapping went is unreachable at the address it
// registered until it sends again).
func Set(ctx context.Context, r *labctl.Runner, node, key, value string) ([]byte, error) {
	n, err := r.Node(ctx, node)
	if err != nil {
		return nil, err
	}
	if n.Role != "router" {
		return Exec(ctx, r, n, []string{"set", key, value})
	}
	out, err := r.Exec(ctx, n, n.Binary, "set", "-json", key, value)
	if err != nil {
		return out, err
	}
	var res natrouter.SetResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("%s: set: %w", n.Name, err)
	}
	names := map[string]string{}
	if nodes, err := r.Nodes(ctx); err == nil {
		for _, h := range nodes {
			for _, ip := range h.Addresses {
				names[ip] = h.Name
			}
		}
	}
	var b bytes.Buffer
	natroutercli.WriteSetResult(&b, res, names)
	var phones []string
	seen := map[string]bool{}
	for _, m := range res.Dropped {
		if who := names[m.Inside.Addr().String()]; who != "" && !seen[who] {
			seen[who] = true
			phones = append(phones, who)
		}
	}
	if len(phones) > 0 {
		fmt.Fprintf(&b, "re-register to be reachable again at once: %s (or wait for their next REGISTER/keep-alive)\n",
			"siplab exec "+strings.Join(phones, " register; siplab exec ")+" register")
	}
	return b.Bytes(), nil
}

// CaptureDir is the lab's capture folder (captures/ in the lab's folder).
func CaptureDir() (string, error) {
	root, err := labctl.FindRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "captures"), nil
}

// LoadCalls reads every capture file in dir (each node's rotated files and
// the current one) merged by time, groups the SIP into calls over the lab's
// topology, and numbers the calls: for the lab's own captures/ (dir "")
// the numbers are kept in captures/calls.tsv so they never shift; a folder
// given is read as it is (its calls.tsv, if copied along, is honoured).
func LoadCalls(dir string) ([]*ladder.Call, error) {
	if dir != "" {
		return ReadCalls(dir, false)
	}
	d, err := CaptureDir()
	if err != nil {
		return nil, err
	}
	return ReadCalls(d, true)
}

// ReadCalls is LoadCalls on a known folder; own keeps the call numbers in
// its calls.tsv (the lab's own captures/).
func ReadCalls(dir string, own bool) ([]*ladder.Call, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.pcapng files in %s (is the lab up? see docs/capture.md)", dir)
	}
	sort.Strings(paths)
	// A file last written before the boundary (a rotated file of an
	// earlier session) holds nothing ReadFiles would keep: not read at all.
	if since, ok, err := capture.ReadBoundary(dir); err == nil && ok {
		var keep []string
		for _, p := range paths {
			if fi, err := os.Stat(p); err != nil || !fi.ModTime().Before(since) {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			paths = keep
		}
	}
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	calls := ladder.Build(tr, ladder.Lab())
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w (%d files in %s)", ladder.ErrNoCalls, len(paths), dir)
	}
	if err := ladder.Number(calls, filepath.Join(dir, ladder.NumbersFile), own); err != nil {
		return nil, err
	}
	return calls, nil
}
