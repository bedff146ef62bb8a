package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/trace/ladder"
)

// labNames is the lab's topology (ladder.Lab, the address plan of
// docker-compose.yml): kept under its old name for the callers that pass
// it on (the scenario runner).
func labNames() ladder.Names { return ladder.Lab() }

// loadCalls is labops.LoadCalls: the lab's captures/ when dir is "".
func loadCalls(dir string) ([]*ladder.Call, error) { return labops.LoadCalls(dir) }

func ladderCmd(args []string) error {
	fs := flag.NewFlagSet("ladder", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	html := fs.Bool("html", false, "write the ladder as one self-contained HTML page (ladder.html here, or -o) instead of text")
	out := fs.String("o", "", "with -html: the HTML file to write (default ladder.html; implies -html)")
	list := fs.Bool("list", false, "list the calls in the capture and exit")
	all := fs.Bool("all", false, "with -list: include REGISTER, OPTIONS and other non-call dialogs")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	// "-html ladder.html" (the form the exercises used) names the file: a
	// positional argument ending in .html is never a call selector.
	if *html || *out != "" {
		var rest []string
		for _, a := range pos {
			if strings.HasSuffix(strings.ToLower(a), ".html") {
				if *out != "" {
					return fmt.Errorf("%w: two HTML files given (%s and %s)", errUsage, *out, a)
				}
				*out = a
				continue
			}
			rest = append(rest, a)
		}
		pos = rest
		if *out == "" {
			*out = "ladder.html"
		}
	}
	if len(pos) > 1 {
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
	var sel string
	if len(pos) == 1 {
		sel = pos[0]
	}
	c, err := ladder.Find(calls, sel)
	if err != nil {
		return err
	}
	if *out == "" {
		return ladder.WriteText(os.Stdout, c)
	}
	path, err := writeHTML(*out, c)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (call %s, %s); open it in a browser: file://%s\n", path, callNumber(c), c.ID, path)
	return nil
}

// writeHTML writes the page next to nothing else (one file, no assets) and
// returns its absolute path; a half-written file is removed.
func writeHTML(name string, c *ladder.Call) (string, error) {
	path, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("ladder -html: %w", err)
	}
	err = ladder.WriteHTML(f, c)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("ladder -html: writing %s: %w", path, err), os.Remove(path))
	}
	return path, nil
}

// callNumber is a call's number for lists, "-" for dialogs that are not
// calls (registrations, pings: shown with -all, selected by Call-ID).
func callNumber(c *ladder.Call) string {
	if c.N == 0 {
		return "-"
	}
	return fmt.Sprint(c.N)
}
