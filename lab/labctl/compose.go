package labctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ComposeEnv names the variable that forces one Compose CLI:
// SIPLAB_COMPOSE="docker-compose" (1.29) or "docker compose" (the v2+
// plugin). CI uses it to run the suite under each.
const ComposeEnv = "SIPLAB_COMPOSE"

// Compose is the Compose CLI the lab is driven with.
type Compose struct {
	Args    []string // "docker", "compose" or "docker-compose"
	Version string   // as the CLI reports it: 5.6.0, 1.29.2
}

// Major is the major version (0 when the version is unreadable).
func (c Compose) Major() int {
	v := strings.TrimPrefix(c.Version, "v")
	major, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(major)
	return n
}

func (c Compose) String() string { return strings.Join(c.Args, " ") + " " + c.Version }

// ComposeCommand picks the Compose CLI: $SIPLAB_COMPOSE when set, else
// `docker compose` when it is v2 or later (what the README and a classroom
// use), else docker-compose 1.29. Both build with the classic builder on
// this engine (v2+ falls back to it without buildx), so the lab image is
// the same either way.
func ComposeCommand(ctx context.Context) (Compose, error) {
	if forced := strings.Fields(os.Getenv(ComposeEnv)); len(forced) > 0 {
		c, err := probeCompose(ctx, forced)
		if err != nil {
			return Compose{}, fmt.Errorf("labctl: %s=%q: %w", ComposeEnv, os.Getenv(ComposeEnv), err)
		}
		return c, nil
	}
	if c, err := probeCompose(ctx, []string{"docker", "compose"}); err == nil && c.Major() >= 2 {
		return c, nil
	}
	if c, err := probeCompose(ctx, []string{"docker-compose"}); err == nil {
		return c, nil
	}
	return Compose{}, ErrNoCompose
}

// probeCompose asks a Compose CLI for its version.
func probeCompose(ctx context.Context, args []string) (Compose, error) {
	if _, err := exec.LookPath(args[0]); err != nil {
		return Compose{}, err
	}
	cmd := exec.CommandContext(ctx, args[0], append(args[1:len(args):len(args)], "version", "--short")...)
	out, err := cmd.Output()
	if err != nil {
		return Compose{}, fmt.Errorf("%s version: %w", strings.Join(args, " "), err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return Compose{}, fmt.Errorf("%s version: empty answer", strings.Join(args, " "))
	}
	return Compose{Args: args, Version: v}, nil
}
