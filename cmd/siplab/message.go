package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/trace/hops"
	"github.com/siplab/siplab/trace/ladder"
)

// messageCmd is `siplab message [<call>.<message> | <call>]`: one message
// of a call at every capture point it crossed (as sent, as received, what
// each hop changed). Messages are named as explain names them (3.2); a
// bare call number, or nothing (the last call), shows its answered INVITE.
func messageCmd(args []string) error {
	fs := flag.NewFlagSet("message", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	const usage = "message [<call>.<message> | <call>] (e.g. message 3.2; default: the last call's answered INVITE)"
	if len(pos) > 1 {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	sel, n := "", 0
	if len(pos) == 1 {
		sel = pos[0]
		if strings.Contains(sel, ".") {
			callN, msgN, err := parseMessageRef(sel)
			if err != nil {
				return fmt.Errorf("%w: %v; %s", errUsage, err, usage)
			}
			sel, n = strconv.Itoa(callN), msgN
		}
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
