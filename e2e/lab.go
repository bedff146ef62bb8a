// Package e2e holds the lab's end-to-end harness and tests: they build the
// real image, bring the real Docker lab up under the Compose project
// "siplab" and always tear it down. They fail, never skip, when Docker (or
// root, for host-side namespaces) is missing.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/siplab/siplab/labctl"
	"github.com/siplab/siplab/uaclient"
)

// Project is the Compose project name of the lab.
const Project = "siplab"

// ExtraLabel marks containers the tests start next to the Compose services
// (probes, echo servers), so teardown removes exactly those.
const ExtraLabel = "siplab.e2e"

// Lab drives one lab checkout.
type Lab struct {
	Root string   // repository root, where docker-compose.yml lives
	Env  []string // added to compose commands (LAB_TARGET=...)
	// ComposeCLI is the Compose the lab is driven with (labctl's choice).
	ComposeCLI labctl.Compose
	compose    []string
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
	return &Lab{Root: root, ComposeCLI: c, compose: c.Args}, nil
}

// run executes a command in the repository root and returns its combined
// output; a failure carries the output.
func (l *Lab) run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = l.Root
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// CheckDocker fails when the Docker engine is unusable.
func (l *Lab) CheckDocker(ctx context.Context) error {
	if _, err := l.run(ctx, nil, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("e2e: docker is not usable: %w", err)
	}
	return nil
}

// BuildBinaries runs scripts/build-bins.sh for the given commands (all when
// none are given).
func (l *Lab) BuildBinaries(ctx context.Context, cmds ...string) (string, error) {
	return l.run(ctx, nil, filepath.Join(l.Root, "scripts", "build-bins.sh"), cmds...)
}

// Compose runs a compose subcommand for the lab project.
func (l *Lab) Compose(ctx context.Context, args ...string) (string, error) {
	full := append(append([]string{}, l.compose[1:]...), "-p", Project, "-f", filepath.Join(l.Root, "docker-compose.yml"))
	full = append(full, args...)
	return l.run(ctx, l.Env, l.compose[0], full...)
}

// Docker runs a docker command.
func (l *Lab) Docker(ctx context.Context, args ...string) (string, error) {
	return l.run(ctx, nil, "docker", args...)
}

// Container returns the container ID of a Compose service.
func (l *Lab) Container(ctx context.Context, service string) (string, error) {
	out, err := l.Compose(ctx, "ps", "-q", service)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" {
		return "", fmt.Errorf("e2e: service %s has no container", service)
	}
	return id, nil
}

// Exec runs a binary's subcommand inside a service's container (the images
// have no shell).
func (l *Lab) Exec(ctx context.Context, service string, args ...string) (string, error) {
	id, err := l.Container(ctx, service)
	if err != nil {
		return "", err
	}
	return l.Docker(ctx, append([]string{"exec", id}, args...)...)
}

// Running lists the containers of the lab project, in any state.
func (l *Lab) Running(ctx context.Context) ([]string, error) {
	out, err := l.Docker(ctx, "ps", "-a", "--format", "{{.Names}}",
		"--filter", "label=com.docker.compose.project="+Project)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// WaitHealthy waits until every service's container reports healthy.
func (l *Lab) WaitHealthy(ctx context.Context, services ...string) error {
	for _, s := range services {
		for {
			id, err := l.Container(ctx, s)
			if err != nil {
				return err
			}
			out, err := l.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", id)
			if err != nil {
				return err
			}
			state := strings.TrimSpace(out)
			if state == "running healthy" {
				break
			}
			if strings.HasPrefix(state, "exited") || strings.HasPrefix(state, "dead") {
				logs, _ := l.Docker(ctx, "logs", "--tail", "30", id)
				return fmt.Errorf("e2e: %s is %s:\n%s", s, state, logs)
			}
			select {
			case <-ctx.Done():
				logs, _ := l.Docker(context.Background(), "logs", "--tail", "30", id)
				return fmt.Errorf("e2e: %s not healthy (%s): %w\n%s", s, state, ctx.Err(), logs)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	return nil
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

// Down removes the lab's containers, networks and volumes.
func (l *Lab) Down(ctx context.Context) error {
	_, err := l.Compose(ctx, "down", "--remove-orphans", "--volumes")
	return err
}

// Phones are the lab's phone services.
var Phones = []string{"alice", "bob", "carol"}

// PhoneStatus reads a phone's status document.
func (l *Lab) PhoneStatus(ctx context.Context, phone string) (uaclient.Status, error) {
	var st uaclient.Status
	out, err := l.Exec(ctx, phone, "/uaclient", "status", "-json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("e2e: %s status: %w", phone, err)
	}
	return st, nil
}

// WaitPhone polls until the phone's registration is in state.
func (l *Lab) WaitPhone(ctx context.Context, phone, state string) error {
	for {
		st, err := l.PhoneStatus(ctx, phone)
		if err == nil && string(st.Registration.State) == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("e2e: %s not %s (last: %+v, %v): %w", phone, state, st.Registration, err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ReadFile copies one regular file out of a service's container. The
// images have no shell (no cat), so it is `docker cp <id>:<path> -`, whose
// stdout is a tar stream holding the file; stderr is kept apart so it
// cannot corrupt the archive.
func (l *Lab) ReadFile(ctx context.Context, service, path string) ([]byte, error) {
	id, err := l.Container(ctx, service)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "docker", "cp", id+":"+path, "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("e2e: docker cp %s:%s: %w: %s", service, path, err, stderr.String())
	}
	tr := tar.NewReader(&stdout)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("e2e: %s:%s: no regular file in the archive", service, path)
		}
		if err != nil {
			return nil, fmt.Errorf("e2e: %s:%s: %w", service, path, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
