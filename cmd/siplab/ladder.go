package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/siplab/siplab/capture"
	"github.com/siplab/siplab/labctl"
	"github.com/siplab/siplab/ladder"
)

// labNames is the lab's topology (ladder.Lab, the address plan of
// docker-compose.yml): kept under its old name for the callers that pass
// it on (the scenario runner).
func labNames() ladder.Names { return ladder.Lab() }

// loadCalls reads every capture file in dir (each node's rotated files and
// the current one) merged by time, groups the SIP into calls over the lab's
// topology, and numbers the calls: for the lab's own captures/ the numbers
// are kept in captures/calls.tsv so they never shift; a folder given with
// -dir is read as it is (its calls.tsv, if copied along, is honoured).
func loadCalls(dir string) ([]*ladder.Call, error) {
	own := dir == ""
	if own {
		root, err := labctl.FindRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, "captures")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.pcapng files in %s (is the lab up? see docs/capture.md)", dir)
	}
	sort.Strings(paths)
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	calls := ladder.Build(tr, labNames())
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w (%d files in %s)", ladder.ErrNoCalls, len(paths), dir)
	}
	if err := ladder.Number(calls, filepath.Join(dir, ladder.NumbersFile), own); err != nil {
		return nil, err
	}
	return calls, nil
}

func ladderCmd(args []string) error {
	fs := flag.NewFlagSet("ladder", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	html := fs.String("html", "", "also write the ladder as one self-contained HTML file")
	list := fs.Bool("list", false, "list the calls in the capture and exit")
	all := fs.Bool("all", false, "with -list: include REGISTER, OPTIONS and other non-call dialogs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: ladder takes at most one call (Call-ID or index)", errUsage)
	}
	calls, err := loadCalls(*dir)
	if err != nil {
		return err
	}
	if *list {
		for _, c := range calls {
			if *all || c.IsInvite() {
				fmt.Printf("%3s  %s  %s\n", callNumber(c), c.ID, c.Summary())
			}
		}
		return nil
	}
	c, err := ladder.Find(calls, fs.Arg(0))
	if err != nil {
		return err
	}
	if err := ladder.WriteText(os.Stdout, c); err != nil {
		return err
	}
	if *html != "" {
		f, err := os.Create(*html)
		if err != nil {
			return err
		}
		err = ladder.WriteHTML(f, c)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return errors.Join(err, os.Remove(*html))
		}
		fmt.Fprintln(os.Stderr, "wrote", *html)
	}
	return nil
}

// callNumber is a call's number for lists, "-" for dialogs that are not
// calls (registrations, pings: shown with -all, selected by Call-ID).
func callNumber(c *ladder.Call) string {
	if c.N == 0 {
		return "-"
	}
	return fmt.Sprint(c.N)
}
