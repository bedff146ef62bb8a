package labctl

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Labels every lab service carries in docker-compose.yml.
const (
	LabelNode   = "siplab.node"   // alice, bob, router-a, proxy...
	LabelRole   = "siplab.role"   // phone, router, proxy, registrar...
	LabelBinary = "siplab.binary" // the daemon binary in the image: /uaclient
)

// Node is one lab container as Docker sees it.
type Node struct {
	Name      string            `json:"name"`
	Role      string            `json:"role"`
	Binary    string            `json:"binary"`
	Container string            `json:"container"`
	Running   bool              `json:"running"`
	State     string            `json:"state"`
	Addresses map[string]string `json:"addresses"` // network name → IPv4
}

// Nodes lists the lab's containers, sorted by role then name. With
// NodesFor set, a list read less than NodesFor ago is returned again.
func (r *Runner) Nodes(ctx context.Context) ([]Node, error) {
	if r.NodesFor <= 0 {
		return r.readNodes(ctx)
	}
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	if r.nodes != nil && time.Since(r.nodesAt) < r.NodesFor {
		return slices.Clone(r.nodes), nil
	}
	nodes, err := r.readNodes(ctx)
	if err != nil || len(nodes) == 0 {
		r.nodes = nil
		return nodes, err
	}
	r.nodes, r.nodesAt = nodes, time.Now()
	return slices.Clone(nodes), nil
}

// ForgetNodes makes the next Nodes ask docker (the lab changed: a reset,
// a command that failed on a node).
func (r *Runner) ForgetNodes() {
	r.nodesMu.Lock()
	r.nodes = nil
	r.nodesMu.Unlock()
}

func (r *Runner) readNodes(ctx context.Context) ([]Node, error) {
	out, err := r.run(ctx, nil, "docker", "ps", "-a", "-q",
		"--filter", "label=com.docker.compose.project="+Project,
		"--filter", "label="+LabelNode)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = r.run(ctx, nil, "docker", append([]string{"inspect"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		Name   string
		Config struct{ Labels map[string]string }
		State  struct {
			Running bool
			Status  string
		}
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("labctl: docker inspect output: %w", err)
	}
	nodes := make([]Node, 0, len(raw))
	for _, c := range raw {
		n := Node{
			Name:      c.Config.Labels[LabelNode],
			Role:      c.Config.Labels[LabelRole],
			Binary:    c.Config.Labels[LabelBinary],
			Container: strings.TrimPrefix(c.Name, "/"),
			Running:   c.State.Running,
			State:     c.State.Status,
			Addresses: map[string]string{},
		}
		for net, s := range c.NetworkSettings.Networks {
			n.Addresses[strings.TrimPrefix(net, Project+"_")] = s.IPAddress
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool {
		ri, rj := roleOrder(nodes[i].Role), roleOrder(nodes[j].Role)
		if ri != rj {
			return ri < rj
		}
		return nodes[i].Name < nodes[j].Name
	})
	return nodes, nil
}

var roles = []string{"phone", "router", "sbc", "proxy", "registrar", "pbx", "carrier", "stun"}

func roleOrder(role string) int {
	if i := slices.Index(roles, role); i >= 0 {
		return i
	}
	return len(roles)
}

// Node finds one node by name, with a clear error listing the known ones.
func (r *Runner) Node(ctx context.Context, name string) (Node, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	var names []string
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return Node{}, fmt.Errorf("%w %q: %w", ErrUnknownNode, name, NotUp(ctx))
	}
	return Node{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownNode, name, strings.Join(names, ", "))
}
