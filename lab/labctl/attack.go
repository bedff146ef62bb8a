package labctl

import (
	"context"
	"fmt"
	"io"
	"os/exec"
)

// Attacker is where `siplab attack` runs from: a host on the simulated
// internet that is neither a site router nor the carrier, so blocking it
// costs no phone its service.
const (
	AttackerIP      = "203.0.113.66"
	AttackerNetwork = "internet"
	attackerName    = Project + "-attacker"
	// LabelAttacker marks the attacker container so `siplab down` removes
	// it even if an attack was interrupted.
	LabelAttacker = "siplab.attacker"
)

// Attack runs the lab image's scanner against target (a node on the
// internet network) from AttackerIP, streaming its report to out. The
// container is removed when the run ends.
func (r *Runner) Attack(ctx context.Context, out io.Writer, target Node, port int, scannerArgs []string) error {
	ip := target.Addresses[AttackerNetwork]
	if ip == "" {
		return fmt.Errorf("labctl: %s has no address on the %s network: it cannot be attacked from there", target.Name, AttackerNetwork)
	}
	if len(scannerArgs) == 0 {
		return fmt.Errorf("labctl: attack needs a mode: options, register or replay")
	}
	args := []string{"run", "--rm", "--name", attackerName, "--label", LabelAttacker + "=1",
		"--network", Project + "_" + AttackerNetwork, "--ip", AttackerIP,
		"--sysctl", "net.ipv6.conf.all.disable_ipv6=1",
		"siplab:latest", "/scanner", scannerArgs[0], "-target", fmt.Sprintf("%s:%d", ip, port)}
	args = append(args, scannerArgs[1:]...)
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("labctl: attack from %s: %w", AttackerIP, err)
	}
	return nil
}

// RemoveAttacker removes a leftover attacker container, if any.
func (r *Runner) RemoveAttacker(ctx context.Context) error {
	out, err := r.run(ctx, nil, "docker", "ps", "-aq", "--filter", "label="+LabelAttacker+"=1")
	if err != nil || len(out) == 0 {
		return err
	}
	_, err = r.run(ctx, nil, "docker", "rm", "-f", attackerName)
	return err
}
