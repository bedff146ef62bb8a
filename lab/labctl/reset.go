package labctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/trace/capture"
)

// ResetStep is one node's part of a reset: the daemon's own one-line
// account of what it undid, or the error.
type ResetStep struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Phase  string `json:"phase"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ResetReport is what Reset did.
type ResetReport struct {
	Steps []ResetStep `json:"steps"`
	// Boundary is the capture boundary written (captures/boundary): ladder,
	// doctor and explain read only what was captured after it.
	Boundary time.Time `json:"boundary"`
	Took     string    `json:"took"`
	// Registered lists the phones registered again at the end.
	Registered []string `json:"registered"`
}

// resetVerb is how each role is reset: the daemon's own `reset` control
// call (the defaults live in the daemon: its startup configuration).
var resetVerb = map[string][]string{
	"router":    {"reset", "-json"},
	"proxy":     {"reset"},
	"registrar": {"reset"},
	"pbx":       {"reset"},
	"sbc":       {"reset"},
	"carrier":   {"reset"},
	"stun":      {"reset"},
	// The phone's reset also stops stray CLI processes in its container.
	"phone": {"reset", "-timeout", "8s"},
}

// Reset brings the running lab back to the state of a fresh `up` without
// restarting a container:
//
//  1. the attacker container goes; proxy, PBX, SBC, carrier and STUN
//     server reset themselves (settings to their startup values, calls
//     hung up, voicemail, subscriptions, blocks and cached registrations
//     dropped);
//  2. every phone stops the stray CLI processes in its container and ends
//     its calls and subscriptions (`uaclient reset -calls`), while the NAT
//     mappings its BYEs need still exist;
//  3. the routers reset (startup preset, pinhole and ALG; every mapping
//     flushed);
//  4. the capture boundary is written (captures/boundary);
//  5. every phone resets the rest (`uaclient reset`: settings to startup
//     values, every binding of its AOR removed with Contact: *, then one
//     REGISTER in a new registration dialog through a fresh mapping);
//
// and returns when every phone is registered. progress, if not nil, gets
// one line per finished step.
func (r *Runner) Reset(ctx context.Context, progress func(string)) (ResetReport, error) {
	start := time.Now()
	var rep ResetReport
	if progress == nil {
		progress = func(string) {}
	}
	// A reset may restart nodes: what follows reads them afresh.
	r.ForgetNodes()
	defer r.ForgetNodes()
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return rep, err
	}
	if len(nodes) == 0 {
		return rep, fmt.Errorf("labctl: the lab is not up (run `siplab up`)")
	}
	// Routers go after the daemons: a PBX's final NOTIFY or an SBC's BYE
	// still reaches a phone through its mapping before the flush.
	var phones, others, routers []Node
	for _, n := range nodes {
		if !n.Running {
			return rep, fmt.Errorf("%w: %s (%s): reset needs the whole lab running; `siplab up` starts it", ErrNotRunning, n.Name, n.State)
		}
		switch {
		case n.Role == "phone":
			phones = append(phones, n)
		case n.Role == "router":
			routers = append(routers, n)
		case resetVerb[n.Role] != nil:
			others = append(others, n)
		}
	}
	var mu sync.Mutex
	record := func(s ResetStep) {
		mu.Lock()
		rep.Steps = append(rep.Steps, s)
		mu.Unlock()
		line := fmt.Sprintf("%-9s %s", s.Node, s.Output)
		if s.Error != "" {
			line = fmt.Sprintf("%-9s FAILED: %s", s.Node, s.Error)
		}
		progress(line)
	}
	var errs []error
	run := func(phase string, list []Node, args func(Node) []string) {
		var wg sync.WaitGroup
		for _, n := range list {
			wg.Go(func() {
				out, err := r.Exec(ctx, n, append([]string{n.Binary}, args(n)...)...)
				s := ResetStep{Node: n.Name, Role: n.Role, Phase: phase, Output: oneLine(n.Role, out)}
				if err != nil {
					s.Error = err.Error()
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s %s: %w", n.Name, phase, err))
					mu.Unlock()
				}
				record(s)
			})
		}
		wg.Wait()
	}

	if err := r.RemoveAttacker(ctx); err != nil {
		errs = append(errs, fmt.Errorf("attacker: %w", err))
	}
	run("reset", others, func(n Node) []string { return resetVerb[n.Role] })
	run("hang up", phones, func(Node) []string { return []string{"reset", "-calls", "-timeout", "5s"} })
	run("reset", routers, func(n Node) []string { return resetVerb[n.Role] })
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	// What follows is the fresh lab: the phones' new registrations are
	// the first thing a ladder or the doctor sees.
	rep.Boundary = time.Now()
	if err := capture.WriteBoundary(filepath.Join(r.Dir, "captures"), rep.Boundary); err != nil {
		return rep, err
	}
	run("reset", phones, func(n Node) []string { return resetVerb[n.Role] })
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.WaitRegistered(wctx, func(string) {}); err != nil {
		return rep, err
	}
	for _, p := range phones {
		rep.Registered = append(rep.Registered, p.Name)
	}
	rep.Took = time.Since(start).Round(10 * time.Millisecond).String()
	return rep, nil
}

// oneLine condenses a daemon's reset output to one line; the proxy
// answers in JSON.
func oneLine(role string, out []byte) string {
	if role == "router" {
		var res natrouter.SetResult
		if json.Unmarshal(out, &res) == nil {
			st := res.Status
			return fmt.Sprintf("preset %s, pinhole %s, alg %s; %d NAT mapping(s) dropped",
				st.Preset.Name, st.Pinhole(), st.ALG, len(res.Dropped))
		}
	}
	if role == "proxy" {
		var res struct {
			Restored  []string `json:"restored"`
			Unblocked []string `json:"unblocked"`
		}
		if json.Unmarshal(out, &res) == nil {
			line := fmt.Sprintf("restored [%s]", strings.Join(res.Restored, " "))
			if len(res.Unblocked) > 0 {
				line += fmt.Sprintf(", unblocked [%s]", strings.Join(res.Unblocked, " "))
			}
			return line
		}
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
