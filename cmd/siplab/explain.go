package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/trace/explain"
	"github.com/siplab/siplab/trace/ladder"
)

// explainUsage is the one way to name a message: the call's number and the
// message's number in that call's ladder, joined by a dot.
const explainUsage = "explain <call>.<message>, e.g. siplab explain 3.2 (message 2 of call 3; siplab ladder shows both numbers)"

func explainCmd(args []string) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: %s", errUsage, explainUsage)
	}
	callN, msgN, err := parseMessageRef(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %v; %s", errUsage, err, explainUsage)
	}
	calls, err := loadCalls(*dir)
	if err != nil {
		return err
	}
	c, err := ladder.Find(calls, strconv.Itoa(callN))
	if err != nil {
		return err
	}
	if msgN > len(c.Messages) {
		return fmt.Errorf("call %d has messages %d.1 to %d.%d (siplab ladder %d)", c.N, c.N, c.N, len(c.Messages), c.N)
	}
	m := c.Messages[msgN-1]
	public := c.Topo.PublicPoint(m.Iface)
	lines, err := explain.Message(m.Payload, explain.Context{Public: public})
	if err != nil {
		return err
	}
	side := "a private side: a LAN or the platform core (private addresses are normal here)"
	if public {
		side = "the internet side (a private address here is a bug)"
	}
	fmt.Printf("message %d.%d (call %d, %s): %s, %s → %s, seen at %s, %s → %s\non %s\n",
		c.N, msgN, c.N, c.ID, m.Label, m.Sender.Name(), m.Receiver.Name(), m.Where(), m.Src, m.Dst, side)
	if m.NAT != "" || m.ALG != "" {
		fmt.Printf("translated by %s: %s\n", m.Sender.Name(), strings.Trim(strings.Join([]string{m.NAT, m.ALG}, "; "), "; "))
	}
	fmt.Println()
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
		fmt.Printf("\n%d problem(s) on this copy; siplab doctor -call %d checks the whole call.\n", problems, c.N)
	}
	return nil
}

// parseMessageRef reads "3.2" (call 3, message 2). A bare number is refused
// rather than guessed at: "22" could be a call or a message.
func parseMessageRef(s string) (call, msg int, err error) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, fmt.Errorf("%q names no message (a bare number could be a call or a message)", s)
	}
	call, err1 := strconv.Atoi(a)
	msg, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || call < 1 || msg < 1 {
		return 0, 0, fmt.Errorf("%q is not <call>.<message> with both numbers from 1", s)
	}
	return call, msg, nil
}
