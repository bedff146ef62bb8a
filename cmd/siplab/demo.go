package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/demolab"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/uaclient"
)

const defaultDemoDir = "/tmp/siplab-demo"

// demo runs the call path without Docker: `demo up` in one terminal,
// `demo call` in another.
func demo(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: demo up | demo call <from> <to>", errUsage)
	}
	switch args[0] {
	case "up":
		return demoUp(ctx, args[1:])
	case "call":
		return demoCall(ctx, args[1:])
	}
	return fmt.Errorf("%w: unknown demo command %q", errUsage, args[0])
}

func demoUp(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo up", flag.ContinueOnError)
	dir := fs.String("dir", defaultDemoDir, "folder for the phones' control sockets")
	usersPath := fs.String("users", "", "users file (default lab-nets/users.conf of the repository)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: -log-level: %v", errUsage, err)
	}
	if *usersPath == "" {
		root, err := labctl.FindRoot()
		if err != nil {
			return err
		}
		*usersPath = filepath.Join(root, "lab-nets", "users.conf")
	}
	users, err := sipauth.LoadUsers(*usersPath)
	if err != nil {
		return err
	}
	cfg := demolab.Default(users)
	cfg.SocketDir = *dir
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	lab, err := demolab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer lab.Close()
	fmt.Printf("siplab demo up (no Docker, loopback only), domain %s\n", demolab.Domain)
	fmt.Printf("  proxy      %s   <- point SIP clients here (outbound proxy)\n", lab.ProxyAddr)
	fmt.Printf("  registrar  %s\n", lab.RegistrarAddr)
	for _, p := range cfg.Phones {
		ph := lab.Phones[p.Name]
		fmt.Printf("  %-10s %s   registered, tone %.0f Hz, control %s\n", p.Name, ph.Addr(), ph.ToneHz(), filepath.Join(*dir, p.Name+".sock"))
	}
	fmt.Println("users: see", *usersPath)
	fmt.Println("now, in another terminal: go run ./cmd/siplab demo call alice bob   (Ctrl-C here stops the demo)")
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}

func demoCall(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo call", flag.ContinueOnError)
	dir := fs.String("dir", defaultDemoDir, "folder of the phones' control sockets")
	hold := fs.Duration("for", 3*time.Second, "how long the call stays up before the caller hangs up")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: demo call <from> <to>", errUsage)
	}
	from, to := fs.Arg(0), fs.Arg(1)
	caller := uaclient.NewControl(filepath.Join(*dir, from+".sock"))
	callee := uaclient.NewControl(filepath.Join(*dir, to+".sock"))
	if _, err := caller.Status(ctx); err != nil {
		return fmt.Errorf("phone %s is not running (start `siplab demo up` first): %w", from, err)
	}
	call, err := caller.Call(ctx, to)
	if err != nil {
		return err
	}
	fmt.Printf("%s calls %s (call-id %s)\n", from, to, call.CallID)
	res, err := caller.Wait(ctx, uaclient.WaitRequest{Condition: "call-state", State: string(uaclient.StateConfirmed), Call: call.ID})
	if err != nil {
		return fmt.Errorf("the call did not connect: %w", err)
	}
	fmt.Printf("answered: %d %s; talking for %s\n", res.Call.Code, res.Call.Reason, *hold)
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	if _, err := caller.Verb(context.Background(), "hangup", uaclient.CallRequest{Call: call.ID}); err != nil {
		return err
	}
	a, err := caller.Status(context.Background())
	if err != nil {
		return err
	}
	b, err := callee.Status(context.Background())
	if err != nil {
		return err
	}
	ca, cb := findCall(a, call.CallID), findCall(b, call.CallID)
	fmt.Println()
	for _, side := range []struct {
		name string
		c    *uaclient.CallStatus
	}{{from, ca}, {to, cb}} {
		fmt.Printf("[%s]\n", side.name)
		if side.c == nil {
			fmt.Println("  no such call")
			continue
		}
		uaclient.WriteText(os.Stdout, "status", *side.c)
	}
	fmt.Println()
	fmt.Println(verdict(from, to, ca, b.ToneHz))
	fmt.Println(verdict(to, from, cb, a.ToneHz))
	return nil
}

func findCall(st uaclient.Status, callID string) *uaclient.CallStatus {
	for i := range st.Calls {
		if st.Calls[i].CallID == callID {
			return &st.Calls[i]
		}
	}
	return nil
}

// verdict states who hears whom, from the listener's RTP statistics.
func verdict(listener, talker string, c *uaclient.CallStatus, talkerHz float64) string {
	if c == nil || c.Media == nil || c.Media.Received.Packets == 0 {
		return fmt.Sprintf("%s hears nothing from %s (no RTP arrived)", listener, talker)
	}
	r := c.Media.Received
	who := talker
	if d := c.ToneHz - talkerHz; d > 30 || d < -30 {
		who = "someone else"
	}
	return strings.TrimSpace(fmt.Sprintf("%s hears %s: %.0f Hz tone, %d packets from %s, %d lost, jitter %.1f ms",
		listener, who, c.ToneHz, r.Packets, r.LastSource, r.Lost, r.JitterMs))
}
