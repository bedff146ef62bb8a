package labctl

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// ReadFile copies one regular file out of a node's container. The images
// have no shell (no cat), so it is `docker cp <ctr>:<path> -`, whose stdout
// is a tar stream holding the file; stderr is kept apart so it cannot
// corrupt the archive.
func (r *Runner) ReadFile(ctx context.Context, n Node, path string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", "cp", n.Container+":"+path, "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("labctl: docker cp %s:%s: %w: %s", n.Name, path, err, stderr.String())
	}
	tr := tar.NewReader(&stdout)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("labctl: %s:%s: no regular file in the archive", n.Name, path)
		}
		if err != nil {
			return nil, fmt.Errorf("labctl: %s:%s: %w", n.Name, path, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
