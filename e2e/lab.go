// Package e2e holds the lab's end-to-end harness and tests: they build the
// real image, bring the real Docker lab up under the Compose project
// "siplab" and always tear it down. They fail, never skip, when Docker (or
// root, for host-side namespaces) is missing.
//
// The lab is driven through labctl, the same code as the siplab CLI: Lab
// only adds what tests need beside it (containers of their own on a lab
// network, string output).
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/uaclient"
)

// Project is the Compose project name of the lab.
const Project = labctl.Project

// ExtraLabel marks containers the tests start next to the Compose services
// (probes, echo servers), so teardown removes exactly those.
const ExtraLabel = "siplab.e2e"

// Preflight is what an e2e suite's TestMain does before it touches
// Docker. It queues, for up to an hour, behind anyone else driving the lab
// on this engine (another test run, a fixture recording: `flock
// /tmp/siplab-lab.lock ...`), then requires root (rootFor says what the
// suite needs it for) and a running Docker engine: the suites fail, never
// skip, without them. The caller unlocks the lock it returns.
func Preflight(rootFor string) (*labctl.LabLock, error) {
	lctx, lcancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer lcancel()
	lock, err := labctl.Lock(lctx, labctl.LockPath)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		lock.Unlock()
		return nil, fmt.Errorf("these tests need root (%s); they fail rather than skip", rootFor)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (&labctl.Runner{}).CheckDocker(ctx); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("%v (these tests need a running Docker engine; they fail rather than skip)", err)
	}
	return lock, nil
}

// Lab drives one lab checkout.
type Lab struct {
	Root string // repository root, where docker-compose.yml lives
	// ComposeCLI is the Compose the lab is driven with (labctl's choice).
	ComposeCLI labctl.Compose
	// R is the labctl runner for Root; its Env is added to compose
	// commands (LAB_TARGET=...).
	R *labctl.Runner
}

// NewLab finds the repository root from dir upwards and the compose command.
func NewLab(dir string) (*Lab, error) {
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "docker-compose.yml")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return nil, fmt.Errorf("e2e: no docker-compose.yml in %s or above", dir)
		}
		root = parent
	}
	// The same choice as the siplab CLI: `docker compose` (v2+) first,
	// docker-compose 1.29 otherwise, $SIPLAB_COMPOSE to force one.
	c, err := labctl.ComposeCommand(context.Background())
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	return &Lab{Root: root, ComposeCLI: c, R: &labctl.Runner{Dir: root}}, nil
}

// Docker runs a docker command and returns its stdout.
func (l *Lab) Docker(ctx context.Context, args ...string) (string, error) {
	out, err := l.R.Docker(ctx, args...)
	return string(out), err
}

// Container returns the container of a lab node (alice, router-a, stun...).
func (l *Lab) Container(ctx context.Context, node string) (string, error) {
	n, err := l.R.Node(ctx, node)
	return n.Container, err
}

// Exec runs a binary's subcommand inside a node's container (the images
// have no shell) and returns its stdout; a failure carries its stderr.
func (l *Lab) Exec(ctx context.Context, node string, args ...string) (string, error) {
	n, err := l.R.Node(ctx, node)
	if err != nil {
		return "", err
	}
	out, err := l.R.Exec(ctx, n, args...)
	return string(out), err
}

// ReadFile copies one regular file out of a node's container.
func (l *Lab) ReadFile(ctx context.Context, node, path string) ([]byte, error) {
	n, err := l.R.Node(ctx, node)
	if err != nil {
		return nil, err
	}
	return l.R.ReadFile(ctx, n, path)
}

// RunExtra starts a container from the lab image on a lab network, labelled
// for teardown. Name gets the "siplab-e2e-" prefix.
func (l *Lab) RunExtra(ctx context.Context, detach bool, name, network, ip string, extra []string, cmd ...string) (string, error) {
	args := []string{"run", "--name", "siplab-e2e-" + name, "--label", ExtraLabel + "=1",
		"--network", Project + "_" + network, "--ip", ip,
		"--sysctl", "net.ipv6.conf.all.disable_ipv6=1"}
	if detach {
		args = append(args, "-d")
	} else {
		args = append(args, "--rm")
	}
	args = append(args, extra...)
	args = append(args, "siplab:latest")
	args = append(args, cmd...)
	return l.Docker(ctx, args...)
}

// RemoveExtras removes the containers started by RunExtra.
func (l *Lab) RemoveExtras(ctx context.Context) error {
	out, err := l.Docker(ctx, "ps", "-aq", "--filter", "label="+ExtraLabel+"=1")
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil
	}
	_, err = l.Docker(ctx, append([]string{"rm", "-f"}, ids...)...)
	return err
}

// Phones are the lab's phone services.
var Phones = []string{"alice", "bob", "carol"}

// PhoneStatus reads a phone's status document.
func (l *Lab) PhoneStatus(ctx context.Context, phone string) (uaclient.Status, error) {
	var st uaclient.Status
	n, err := l.R.Node(ctx, phone)
	if err != nil {
		return st, err
	}
	return st, l.R.Status(ctx, n, &st)
}
