package labctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Daemons reads the list of binaries the lab image carries
// (lab-nets/daemons, shared with the Dockerfile and scripts/build-bins.sh).
func (r *Runner) Daemons() ([]string, error) {
	raw, err := os.ReadFile(filepath.Join(r.Dir, "lab-nets", "daemons"))
	if err != nil {
		return nil, fmt.Errorf("labctl: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("labctl: lab-nets/daemons lists no daemon")
	}
	return out, nil
}

// HaveGo reports whether the host can compile the daemons; a classroom
// machine with only Docker builds them inside the image instead.
func HaveGo() bool {
	_, err := exec.LookPath("go")
	return err == nil
}

// BuildBinaries compiles the daemons as static binaries into Dir/bin, the
// build context of the image's `prebuilt` stage (no registry needed).
func (r *Runner) BuildBinaries(ctx context.Context) error {
	out := filepath.Join(r.Dir, "bin")
	// bin/ is the image's whole content: start empty so a binary built
	// earlier for something else cannot slip into the lab image.
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	daemons, err := r.Daemons()
	if err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out + string(filepath.Separator)}
	for _, d := range daemons {
		args = append(args, "./cmd/"+d)
	}
	env := []string{"CGO_ENABLED=0", "GOOS=linux"}
	return r.stream(ctx, env, "go", args...)
}

// FindRoot walks up from the working directory to the folder holding
// docker-compose.yml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("labctl: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "docker-compose.yml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("labctl: no docker-compose.yml here or above: run siplab from the siplab repository")
		}
		dir = parent
	}
}
