package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/siplab/siplab/explain"
	"github.com/siplab/siplab/ladder"
)

func explainCmd(args []string) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 2 {
		return fmt.Errorf("%w: explain [call] [n]", errUsage)
	}
	calls, err := loadCalls(*dir)
	if err != nil {
		return err
	}
	c, err := ladder.Find(calls, fs.Arg(0))
	if err != nil {
		return err
	}
	// n is the message number in `siplab ladder`; default the first one.
	n := 1
	if fs.NArg() == 2 {
		n, err = strconv.Atoi(fs.Arg(1))
		if err != nil || n < 1 || n > len(c.Messages) {
			return fmt.Errorf("message %q: the call has messages 1..%d (see siplab ladder)", fs.Arg(1), len(c.Messages))
		}
	}
	m := c.Messages[n-1]
	lines, err := explain.Message(m.Payload, explain.Context{Public: ladder.PublicSide(m.Iface)})
	if err != nil {
		return err
	}
	side := "a private side: a LAN or the platform core (private addresses are normal here)"
	if ladder.PublicSide(m.Iface) {
		side = "the internet side (a private address here is a bug)"
	}
	fmt.Printf("message %d of call %s: %s, seen at %s, %s → %s\non %s\n\n", n, c.ID, m.Label, m.Iface, m.Src, m.Dst, side)
	problems := 0
	for _, l := range lines {
		fmt.Printf("%s\n    %s\n", l.Text, l.Explain)
		for _, p := range l.Problems {
			problems++
			fmt.Printf("    !! %s\n", p)
		}
	}
	if problems == 0 {
		fmt.Println("\nnothing wrong with this copy of the message.")
	} else {
		fmt.Printf("\n%d problem(s) on this copy; siplab doctor checks the whole call.\n", problems)
	}
	return nil
}
