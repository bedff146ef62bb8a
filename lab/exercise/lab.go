package exercise

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/siplab/siplab/lab/browsersite"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/webphone/headless"
)

// Lab is the running lab as the exercises use it: a node daemon's
// subcommands (set, status -json, call ...) and the attacker.
type Lab interface {
	// Exec runs the node's daemon binary with args inside its container
	// and returns what it printed.
	Exec(ctx context.Context, node string, args ...string) ([]byte, error)
	// Attack runs the scanner from the attacker's address against node.
	Attack(ctx context.Context, node string, args ...string) ([]byte, error)
	// CaptureDir is the folder the lab's capture points write to.
	CaptureDir() string
	// Reset puts the lab back to a fresh `up` (siplab reset); progress,
	// if not nil, gets one line per node.
	Reset(ctx context.Context, progress func(string)) error
}

// DockerLab is the Docker lab driven through labctl. The node list is read
// once: exercises run many commands and the containers do not change.
type DockerLab struct {
	R *labctl.Runner

	mu    sync.Mutex
	nodes map[string]labctl.Node
}

func (d *DockerLab) node(ctx context.Context, name string) (labctl.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nodes == nil {
		nodes, err := d.R.Nodes(ctx)
		if err != nil {
			return labctl.Node{}, err
		}
		if len(nodes) == 0 {
			return labctl.Node{}, fmt.Errorf("exercise: the lab is not up (run `siplab up`)")
		}
		d.nodes = map[string]labctl.Node{}
		for _, n := range nodes {
			d.nodes[n.Name] = n
		}
	}
	n, ok := d.nodes[name]
	if !ok {
		return d.R.Node(ctx, name) // its error lists the known nodes
	}
	return n, nil
}

// Exec implements Lab.
func (d *DockerLab) Exec(ctx context.Context, node string, args ...string) ([]byte, error) {
	n, err := d.node(ctx, node)
	if err != nil {
		return nil, err
	}
	return d.R.Exec(ctx, n, append([]string{n.Binary}, args...)...)
}

// CaptureDir implements Lab: captures/ in the repository root (the
// Compose file's bind mount).
func (d *DockerLab) CaptureDir() string { return filepath.Join(d.R.Dir, "captures") }

// Attack implements Lab.
func (d *DockerLab) Attack(ctx context.Context, node string, args ...string) ([]byte, error) {
	n, err := d.node(ctx, node)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = d.R.Attack(ctx, &out, n, 5060, args)
	return out.Bytes(), err
}

// Reset implements Lab: labctl's reset, the one `siplab reset` runs.
func (d *DockerLab) Reset(ctx context.Context, progress func(string)) error {
	_, err := d.R.Reset(ctx, progress)
	return err
}

// BrowserLab is a lab with a browser site (router-w's LAN): its steps may
// run `webphone call ...` and its checks place browser calls. Placing one
// needs root and Chromium on the machine that runs siplab.
type BrowserLab interface {
	Lab
	// WebPhone runs `siplab webphone args...` and returns what it printed.
	WebPhone(ctx context.Context, args ...string) ([]byte, error)
	// BrowserCall places a browser call from the site; during runs while
	// it is up.
	BrowserCall(ctx context.Context, o browsersite.CallOptions, during func(context.Context, headless.State) error) (browsersite.Outcome, error)
}

// WebPhone implements BrowserLab.
func (d *DockerLab) WebPhone(ctx context.Context, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := browsersite.Command(ctx, d, args, &out)
	return out.Bytes(), err
}

// BrowserCall implements BrowserLab.
func (d *DockerLab) BrowserCall(ctx context.Context, o browsersite.CallOptions, during func(context.Context, headless.State) error) (browsersite.Outcome, error) {
	return browsersite.Call(ctx, o, during)
}
