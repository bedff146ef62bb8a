// Package labctl drives the Docker lab from the host: it finds the lab's
// nodes by their labels, runs the daemons' own subcommands inside them
// (a FROM scratch image has no shell), and wraps Compose v1 and v2 alike.
package labctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Project is the Compose project name; every container, network and image
// the lab creates carries it, so the lab only ever touches its own things.
const Project = "siplab"

var (
	ErrNoDocker    = errors.New("labctl: docker is not usable (is the engine running?)")
	ErrNoCompose   = errors.New("labctl: neither `docker compose` nor `docker-compose` is installed")
	ErrUnknownNode = errors.New("labctl: unknown node")
	ErrNotRunning  = errors.New("labctl: node is not running")
)

// Runner runs docker commands. Dir is the lab's folder (where
// docker-compose.yml and captures/ live: FindRoot); empty for verbs that
// only talk to a running lab from outside any clone.
type Runner struct {
	Dir    string
	Stdout io.Writer // progress output of long commands (stdout and stderr); nil = quiet
	// Env is added to the environment of compose commands (LAB_TARGET...).
	Env []string

	// NodesFor is how long Nodes may answer from its last read: a
	// long-running caller (the console) asks for the nodes on every poll
	// and every button, a docker ps and a docker inspect each time. Zero
	// (the CLI) asks docker every time. A command that fails on a node,
	// and Reset, forget the list.
	NodesFor time.Duration

	compose []string
	nodesMu sync.Mutex
	nodes   []Node
	nodesAt time.Time
}

// run executes name args..., returning stdout; stderr is folded into the error.
func (r *Runner) run(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// stream executes a command with its output shown to the user.
func (r *Runner) stream(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	if r.Stdout != nil {
		cmd.Stdout = r.Stdout
		cmd.Stderr = r.Stdout
	} else {
		cmd.Stderr = &stderr
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Docker runs a docker command and returns its stdout; stderr is folded
// into the error.
func (r *Runner) Docker(ctx context.Context, args ...string) ([]byte, error) {
	return r.run(ctx, nil, "docker", args...)
}

// CheckDocker fails with ErrNoDocker when the engine cannot be reached.
func (r *Runner) CheckDocker(ctx context.Context) error {
	if _, err := r.run(ctx, nil, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
}

// Compose runs a compose subcommand for the lab project with the Compose
// CLI ComposeCommand picks (`docker compose` v2+ first).
func (r *Runner) Compose(ctx context.Context, args ...string) error {
	base, err := r.composeCmd(ctx)
	if err != nil {
		return err
	}
	full := append(append(base[1:len(base):len(base)], "-p", Project), args...)
	return r.stream(ctx, r.Env, base[0], full...)
}

func (r *Runner) composeCmd(ctx context.Context) ([]string, error) {
	if r.compose != nil {
		return r.compose, nil
	}
	c, err := ComposeCommand(ctx)
	if err != nil {
		return nil, err
	}
	r.compose = c.Args
	return r.compose, nil
}

// Exec runs a command inside a lab node's container and returns stdout.
func (r *Runner) Exec(ctx context.Context, node Node, args ...string) ([]byte, error) {
	if !node.Running {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, node.Name)
	}
	out, err := r.run(ctx, nil, "docker", append([]string{"exec", node.Container}, args...)...)
	if err != nil {
		// The node may have stopped or been recreated since Nodes.
		r.ForgetNodes()
		return out, fmt.Errorf("%s: %w", node.Name, err)
	}
	return out, nil
}
