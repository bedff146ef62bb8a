package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/siplab/siplab/lab/exercise"
	"os"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
)

// phoneCommand runs a phone verb inside the phone's container
// (labops.Phone: the phone's own CLI is the single implementation).
func phoneCommand(ctx context.Context, r *labctl.Runner, verb string, args []string) error {
	out, err := labops.Phone(ctx, r, verb, args)
	os.Stdout.Write(out)
	if errors.Is(err, labops.ErrUsage) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

// attack runs the scanner from the lab's attacker address against a node.
func attack(ctx context.Context, r *labctl.Runner, args []string) error {
	n, err := nodeAndArgs(ctx, r, args, "attack <node> options|register|replay [scanner flags]")
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
	out, err := labops.Set(ctx, r, args[0], args[1], args[2])
	os.Stdout.Write(out)
	return err
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
	n, err := nodeAndArgs(ctx, r, args, "exec <node> <args...>")
	if err != nil {
		return err
	}
	return passthrough(ctx, r, n, args[1:])
}

// nodeAndArgs is the node a verb's first argument names; a verb that
// takes a node and more gets a usage error with fewer.
func nodeAndArgs(ctx context.Context, r *labctl.Runner, args []string, usage string) (labctl.Node, error) {
	if len(args) < 2 {
		return labctl.Node{}, fmt.Errorf("%w: %s", errUsage, usage)
	}
	return r.Node(ctx, args[0])
}

func passthrough(ctx context.Context, r *labctl.Runner, n labctl.Node, args []string) error {
	out, err := labops.Exec(ctx, r, n, args)
	os.Stdout.Write(out)
	return err
}
