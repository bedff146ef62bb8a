package main

import (
	"context"
	"flag"
	"fmt"
	"net"

	"github.com/siplab/siplab/lab/console"
	"github.com/siplab/siplab/lab/labctl"
)

// consoleCmd is `siplab console [-listen addr] [-token t]`: the classroom
// console (docs/console.md).
func consoleCmd(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	listen := fs.String("listen", console.DefaultAddr, "address to serve on; anything but loopback requires the token printed at start")
	token := fs.String("token", "", "token for a non-loopback -listen (default: a random one)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: console takes no arguments", errUsage)
	}
	root, err := labctl.FindRoot()
	if err != nil {
		return err
	}
	r.Dir = root
	srv, err := console.New(console.Config{Listen: *listen, Token: *token, Lab: &console.DockerLab{R: r, Root: root}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	u := "http://" + ln.Addr().String() + "/"
	if t := srv.Token(); t != "" {
		fmt.Printf("siplab console on %s?token=%s\n(anyone with this address can drive the lab: share it with the class only)\n", u, t)
	} else {
		fmt.Printf("siplab console on %s (loopback only; -listen 0.0.0.0:8080 for the class, with a token)\n", u)
	}
	return srv.Run(ctx, ln)
}
