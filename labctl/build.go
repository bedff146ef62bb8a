package labctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Daemons is every binary the lab image carries.
var Daemons = []string{"registrar", "proxy", "uaclient", "natrouter"}

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
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out + string(filepath.Separator)}
	for _, d := range Daemons {
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
