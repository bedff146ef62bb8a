package console

import (
	"bytes"
	"context"
	"path/filepath"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/trace/doctor"
)

// Lab is the running lab as the console sees it: the same operations as
// the siplab verbs.
type Lab interface {
	Status(ctx context.Context) ([]labops.NodeStatus, error)
	Phone(ctx context.Context, verb string, args []string) ([]byte, error)
	Set(ctx context.Context, node, key, value string) ([]byte, error)
	Reset(ctx context.Context) ([]byte, error)
	// CaptureDir is the folder the capture points write: the poller
	// follows it (labops.Follow) for the live ladder.
	CaptureDir() string
	StateFindings(ctx context.Context) []doctor.Finding
	Exercises() *labops.Exercises
}

// DockerLab is the Docker lab through labops and labctl.
type DockerLab struct {
	R    *labctl.Runner
	Root string // the lab's folder: captures/, the exercise progress
}

func (d *DockerLab) Status(ctx context.Context) ([]labops.NodeStatus, error) {
	return labops.Status(ctx, d.R)
}

func (d *DockerLab) Phone(ctx context.Context, verb string, args []string) ([]byte, error) {
	return labops.Phone(ctx, d.R, verb, args)
}

func (d *DockerLab) Set(ctx context.Context, node, key, value string) ([]byte, error) {
	return labops.Set(ctx, d.R, node, key, value)
}

func (d *DockerLab) Reset(ctx context.Context) ([]byte, error) {
	var b bytes.Buffer
	rep, err := d.R.Reset(ctx, func(s string) { b.WriteString(s + "\n") })
	if err == nil {
		b.WriteString("reset in " + rep.Took + "\n")
	}
	return b.Bytes(), err
}

func (d *DockerLab) CaptureDir() string { return filepath.Join(d.Root, "captures") }

func (d *DockerLab) StateFindings(ctx context.Context) []doctor.Finding {
	f, _ := labops.StateFindings(ctx, d.R)
	return f
}

func (d *DockerLab) Exercises() *labops.Exercises { return labops.OpenExercises(d.Root) }
