package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/siplab/siplab/lab/labctl"
)

func up(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for every phone to register")
	noBuild := fs.Bool("no-build", false, "start the images already built")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// up builds and starts this repository's lab, never the folder some
	// other running lab came from.
	root, err := labctl.FindRepo()
	if err != nil {
		return err
	}
	r.Dir = root
	if err := r.CheckDocker(ctx); err != nil {
		return err
	}
	c, err := labctl.ComposeCommand(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("» using %s\n", c)
	start := time.Now()
	if !*noBuild {
		// Compiling on the host and copying the binaries in needs no image
		// registry; a Docker-only classroom machine compiles in the image.
		target := "source"
		if labctl.HaveGo() {
			fmt.Println("» compiling the daemons (static binaries into bin/)")
			if err := r.BuildBinaries(ctx); err != nil {
				return err
			}
			target = "prebuilt"
		}
		r.Env = append(r.Env, "LAB_TARGET="+target)
		fmt.Printf("» building the lab image (target %s)\n", target)
		if err := r.Compose(ctx, "build"); err != nil {
			return err
		}
	}
	fmt.Println("» starting the lab")
	if err := r.Compose(ctx, "up", "-d", "--remove-orphans"); err != nil {
		return teardownOnCancel(ctx, r, err)
	}
	browserRoutes(ctx, r)
	fmt.Println("» waiting for every phone to register")
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := r.WaitRegistered(wctx, func(line string) { fmt.Println("  " + line) }); err != nil {
		return teardownOnCancel(ctx, r, err)
	}
	fmt.Printf("» lab up in %s: try `siplab status` and `siplab call alice bob`\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// teardownOnCancel removes a half-built lab when the user pressed Ctrl-C;
// on other errors the lab stays up so it can be inspected.
func teardownOnCancel(ctx context.Context, r *labctl.Runner, err error) error {
	if ctx.Err() == nil {
		return err
	}
	fmt.Println("» interrupted: removing the half-built lab")
	dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if derr := r.Compose(dctx, "down", "--remove-orphans"); derr != nil {
		return fmt.Errorf("%w (and tearing down failed: %v)", err, derr)
	}
	return err
}

func down(ctx context.Context, r *labctl.Runner, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: down takes no arguments", errUsage)
	}
	if err := r.CheckDocker(ctx); err != nil {
		return err
	}
	// From any directory: the lab's own folder (its labels) if it is up,
	// else the repository here; with neither there is nothing to remove.
	if r.Dir == "" {
		dir, err := labctl.LabDir(ctx)
		if err != nil {
			return err
		}
		if dir != "" {
			return fmt.Errorf("the lab was started from %s, which holds no docker-compose.yml any more: "+
				"run siplab down in a clone of the repository, or `docker compose -p %s down` (v2+ needs no file)", dir, labctl.Project)
		}
		fmt.Println("» no lab is up (and no repository here)")
		return r.RemoveAttacker(ctx)
	}
	// An interrupted `siplab attack` may have left its container on the
	// lab's internet network, which would keep the network from going.
	if err := r.RemoveAttacker(ctx); err != nil {
		return err
	}
	if err := r.DelHostRoutes(ctx); err != nil && os.Geteuid() == 0 {
		return err
	}
	return r.Compose(ctx, "down", "--remove-orphans", "--volumes")
}

// browserRoutes routes the lab's internet ranges from the host via
// router-w, so the intern's browser meets the lab behind NAT
// (docs/webrtc.md). Without root it says what to run instead: the rest of
// the lab works without them.
func browserRoutes(ctx context.Context, r *labctl.Runner) {
	err := r.AddHostRoutes(ctx)
	if err == nil {
		fmt.Println("» host routes to the lab via router-w (192.168.9.254): the browser phone is https://203.0.113.5:8443/phone/")
		return
	}
	fmt.Printf("» no host routes for the browser phone (%v); as root run:\n", err)
	for _, c := range labctl.HostRouteCommands() {
		fmt.Println("    " + c)
	}
}
