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

// BuildBinaries compiles the daemons into Dir/bin, the build context of the
// image's `prebuilt` stage (no registry needed): one static multi-call binary
// bin/siplabd and a relative symlink bin/<daemon> -> siplabd per daemon of
// lab-nets/daemons (siplabd runs the daemon its program name names), as
// scripts/build-bins.sh does.
func (r *Runner) BuildBinaries(ctx context.Context) error {
	out := filepath.Join(r.Dir, "bin")
	daemons, err := r.Daemons()
	if err != nil {
		return err
	}
	// bin/ is the image's whole content: built from empty so a binary built
	// earlier for something else cannot slip into the lab image, and in a
	// sibling folder renamed into place at the end, so a failed build
	// leaves no bin/ without siplabd (the Dockerfile's prebuilt stage
	// refuses a missing bin/, not an empty one).
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	env := []string{"CGO_ENABLED=0", "GOOS=linux"}
	if err := r.stream(ctx, env, "go", "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(tmp, MultiCallBinary), "./cmd/"+MultiCallBinary); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := LinkDaemons(tmp, daemons); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("labctl: %w", err)
	}
	return nil
}

// MultiCallBinary is the one binary in the lab image that holds every daemon.
const MultiCallBinary = "siplabd"

// LinkDaemons creates dir/<daemon> -> siplabd for each daemon. The links are
// relative so they resolve both in bin/ on the host and at the image root
// (Docker's COPY of a directory keeps the symlinks in it).
func LinkDaemons(dir string, daemons []string) error {
	for _, d := range daemons {
		if d == MultiCallBinary || strings.ContainsRune(d, filepath.Separator) {
			return fmt.Errorf("labctl: lab-nets/daemons: %q is not a daemon name", d)
		}
		if err := os.Symlink(MultiCallBinary, filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("labctl: %w", err)
		}
	}
	return nil
}
