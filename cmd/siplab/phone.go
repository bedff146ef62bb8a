package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/siplab/siplab/exercise"
	"os"
	"strings"

	"github.com/siplab/siplab/internal/cli/natroutercli"
	"github.com/siplab/siplab/natrouter"

	"github.com/siplab/siplab/labctl"
)

// phoneCommand runs a phone verb inside the phone's container: the phone's
// own CLI is the single implementation, siplab only finds the container.
func phoneCommand(ctx context.Context, r *labctl.Runner, verb string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s needs a phone name", errUsage, verb)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return err
	}
	// The carrier places and answers PSTN calls with the same verbs.
	if n.Role != "phone" && n.Role != "carrier" {
		return fmt.Errorf("%s is a %s, not a phone", n.Name, n.Role)
	}
	return passthrough(ctx, r, n, append([]string{verb}, args[1:]...))
}

// attack runs the scanner from the lab's attacker address against a node.
func attack(ctx context.Context, r *labctl.Runner, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: attack <node> options|register|replay [scanner flags]", errUsage)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return err
	}
	// replay re-sends credentials copied from the proxy's capture.
	sargs, err := exercise.AttackArgs(&exercise.DockerLab{R: r}, args[1:])
	if err != nil {
		return err
	}
	return r.Attack(ctx, os.Stdout, n, 5060, sargs)
}

func set(ctx context.Context, r *labctl.Runner, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("%w: set <node> <setting> <value>", errUsage)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return err
	}
	if n.Role == "router" {
		return setRouter(ctx, r, n, args[1], args[2])
	}
	return passthrough(ctx, r, n, []string{"set", args[1], args[2]})
}

// setRouter changes a router setting and says which mappings the change
// dropped, naming the lab hosts behind them: a phone whose mapping went is
// unreachable at the address it registered until it sends again.
func setRouter(ctx context.Context, r *labctl.Runner, n labctl.Node, key, value string) error {
	out, err := r.Exec(ctx, n, n.Binary, "set", "-json", key, value)
	if err != nil {
		return err
	}
	var res natrouter.SetResult
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("%s: set: %w", n.Name, err)
	}
	names := map[string]string{}
	if nodes, err := r.Nodes(ctx); err == nil {
		for _, h := range nodes {
			for _, ip := range h.Addresses {
				names[ip] = h.Name
			}
		}
	}
	natroutercli.WriteSetResult(os.Stdout, res, names)
	var phones []string
	seen := map[string]bool{}
	for _, m := range res.Dropped {
		if who := names[m.Inside.Addr().String()]; who != "" && !seen[who] {
			seen[who] = true
			phones = append(phones, who)
		}
	}
	if len(phones) > 0 {
		fmt.Printf("re-register to be reachable again at once: %s (or wait for their next REGISTER/keep-alive)\n",
			"siplab exec "+strings.Join(phones, " register; siplab exec ")+" register")
	}
	return nil
}

func get(ctx context.Context, r *labctl.Runner, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: get <node>", errUsage)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return err
	}
	// Phones list their settings with get; the other daemons show theirs
	// in status.
	verb := "status"
	if n.Role == "phone" {
		verb = "get"
	}
	return passthrough(ctx, r, n, []string{verb})
}

func execNode(ctx context.Context, r *labctl.Runner, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: exec <node> <args...>", errUsage)
	}
	n, err := r.Node(ctx, args[0])
	if err != nil {
		return err
	}
	return passthrough(ctx, r, n, args[1:])
}

func passthrough(ctx context.Context, r *labctl.Runner, n labctl.Node, args []string) error {
	out, err := r.Exec(ctx, n, append([]string{n.Binary}, args...)...)
	os.Stdout.Write(out)
	return err
}
