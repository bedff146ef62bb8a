package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/siplab/siplab/hops"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/ladder"
)

// messageCmd is `siplab message [call] [n]`: one message of a call at
// every capture point it crossed (as sent, as received, what each hop
// changed). n is the message's number in the call's ladder; without it,
// the INVITE that was answered.
func messageCmd(args []string) error {
	fs := flag.NewFlagSet("message", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) > 2 {
		return fmt.Errorf("%w: message [call] [n]", errUsage)
	}
	sel, n := "", 0
	switch len(pos) {
	case 2:
		sel = pos[0]
		if n, err = strconv.Atoi(pos[1]); err != nil || n < 1 {
			return fmt.Errorf("%w: message number %q (the number in the ladder, 1...)", errUsage, pos[1])
		}
	case 1:
		sel = pos[0]
	}
	calls, err := loadCalls(*dir)
	if err != nil {
		return err
	}
	c, err := ladder.Find(calls, sel)
	if err != nil {
		return err
	}
	t, err := hops.Of(c, n)
	if err != nil {
		return err
	}
	fmt.Printf("Call %s (%s)\n", c.ID, c.Summary())
	hops.Write(os.Stdout, t)
	return nil
}
