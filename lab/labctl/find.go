package labctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Labels Compose (1.29 and v2+ alike) puts on every container it creates.
const (
	LabelProject    = "com.docker.compose.project"
	LabelWorkingDir = "com.docker.compose.project.working_dir"
)

// ErrNotUp means no container of the lab project exists.
var ErrNotUp = errors.New("the lab is not up")

// LabDir is the folder the running lab was started from (the Compose
// working_dir label of its containers): its docker-compose.yml and
// captures/. It is "" (and no error) when no lab container exists.
func LabDir(ctx context.Context) (string, error) {
	r := &Runner{}
	out, err := r.run(ctx, nil, "docker", "ps", "-a",
		"--filter", "label="+LabelProject+"="+Project,
		"--filter", "label="+LabelNode,
		"--format", `{{.Label "`+LabelWorkingDir+`"}}`)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	for _, dir := range strings.Split(string(out), "\n") {
		if dir = strings.TrimSpace(dir); dir != "" {
			return dir, nil
		}
	}
	return "", nil
}

// OtherProjects lists the Compose projects other than "siplab" that run
// lab containers (a siplab.node label): a lab started with another -p, or
// from a copy without the repository's .env, which siplab cannot drive.
func OtherProjects(ctx context.Context) ([]string, error) {
	r := &Runner{}
	out, err := r.run(ctx, nil, "docker", "ps", "-a", "--filter", "label="+LabelNode,
		"--format", `{{.Label "`+LabelProject+`"}}`)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	var projects []string
	for _, p := range strings.Fields(string(out)) {
		if p != Project && !slices.Contains(projects, p) {
			projects = append(projects, p)
		}
	}
	slices.Sort(projects)
	return projects, nil
}

// NotUp is the error for a verb that needs the lab when none is up. It
// names a lab running under another project name, the one case where the
// containers are there but siplab cannot see them.
func NotUp(ctx context.Context) error {
	others, err := OtherProjects(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return fmt.Errorf("%w as Compose project %q, but lab containers run as project %s "+
			"(started with -p, or from a copy without the repository's .env): "+
			"bring them down with `docker compose -p %s down`, then run `siplab up` (or `docker compose up -d`) in the repository",
			ErrNotUp, Project, quoteAll(others), others[0])
	}
	return fmt.Errorf("%w (run `siplab up` in the repository)", ErrNotUp)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// FindRepo walks up from the working directory to the folder holding
// docker-compose.yml: what `siplab up` builds and starts.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("labctl: %w", err)
	}
	for {
		if hasComposeFile(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("labctl: no docker-compose.yml here or above: run this inside a clone of the siplab repository")
		}
		dir = parent
	}
}

// FindRoot is the lab's folder: the one the running lab was started from,
// so verbs that read its captures/ work from any directory, else the
// repository around the working directory (a lab that is down, or a
// machine without Docker reading captures).
func FindRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if dir, err := LabDir(ctx); err == nil && dir != "" && hasComposeFile(dir) {
		return dir, nil
	}
	return FindRepo()
}

func hasComposeFile(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "docker-compose.yml"))
	return err == nil
}
