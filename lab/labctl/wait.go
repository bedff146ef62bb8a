package labctl

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Status runs the node daemon's `status -json` and decodes it into out.
func (r *Runner) Status(ctx context.Context, n Node, out any) error {
	raw, err := r.Exec(ctx, n, n.Binary, "status", "-json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("labctl: %s status: %w", n.Name, err)
	}
	return nil
}

// phoneRegistration is the part of a phone's status that `up` waits on.
type phoneRegistration struct {
	Registration struct {
		State string `json:"state"`
	} `json:"registration"`
}

// WaitRegistered polls every phone until all report "registered", calling
// progress whenever the set of registered phones changes.
func (r *Runner) WaitRegistered(ctx context.Context, progress func(string)) error {
	last := ""
	for {
		nodes, err := r.Nodes(ctx)
		if err != nil {
			return err
		}
		var waiting, done []string
		for _, n := range nodes {
			if n.Role != "phone" {
				continue
			}
			var st phoneRegistration
			if err := r.Status(ctx, n, &st); err != nil || st.Registration.State != "registered" {
				state := st.Registration.State
				if err != nil {
					state = "starting"
				}
				waiting = append(waiting, n.Name+" ("+state+")")
				continue
			}
			done = append(done, n.Name)
		}
		sort.Strings(done)
		line := fmt.Sprintf("registered: %s; waiting: %s", list(done), list(waiting))
		if line != last {
			progress(line)
			last = line
		}
		if len(waiting) == 0 && len(done) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("labctl: phones not registered: %s: %w", list(waiting), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

// WaitHealthy waits until each named node's container is running and its
// healthcheck reports healthy; a node that exited fails at once with the
// tail of its log.
func (r *Runner) WaitHealthy(ctx context.Context, names ...string) error {
	for _, name := range names {
		for {
			n, err := r.Node(ctx, name)
			if err != nil {
				return err
			}
			out, err := r.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", n.Container)
			if err != nil {
				return err
			}
			state := strings.TrimSpace(string(out))
			if state == "running healthy" {
				break
			}
			if strings.HasPrefix(state, "exited") || strings.HasPrefix(state, "dead") {
				logs, _ := r.Docker(ctx, "logs", "--tail", "30", n.Container)
				return fmt.Errorf("labctl: %s is %s:\n%s", name, state, logs)
			}
			select {
			case <-ctx.Done():
				logs, _ := r.Docker(context.Background(), "logs", "--tail", "30", n.Container)
				return fmt.Errorf("labctl: %s not healthy (%s): %w\n%s", name, state, ctx.Err(), logs)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	return nil
}
