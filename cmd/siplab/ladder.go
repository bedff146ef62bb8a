package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/siplab/siplab/capture"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/labctl"
	"github.com/siplab/siplab/ladder"
)

// labNames is the lab's address plan (docker-compose.yml, lab-nets/): the
// ladder names its columns from it. A router is named by its public
// address; the proxy has one address on the internet and one on the core.
func labNames() ladder.Names {
	m := ladder.Names{}
	add := func(addr, name, role string) { m[netip.MustParseAddr(addr)] = ladder.Host{Name: name, Role: role} }
	add("192.168.1.50", "alice", "phone")
	add("192.168.2.50", "bob", "phone")
	add("192.168.2.51", "carol", "phone")
	add("192.168.1.1", "router-a", "router lan")
	add("192.168.2.1", "router-b", "router lan")
	add("203.0.113.2", "router-a", "router wan")
	add("203.0.113.3", "router-b", "router wan")
	add("203.0.113.10", "proxy", "proxy")
	add("10.0.0.10", "proxy", "proxy core")
	add("10.0.0.20", "registrar", "registrar")
	add("10.0.0.30", "pbx", "pbx")
	add("203.0.113.30", "pbx", "pbx media")
	add("203.0.113.5", "sbc", "sbc")
	add("10.0.0.5", "sbc", "sbc core")
	add("203.0.113.40", "carrier", "carrier")
	add("203.0.113.20", "stunturn", "stun")
	add("203.0.113.66", "attacker", "attacker")
	return m
}

// loadCalls reads every capture file in dir (each node's rotated files and
// the current one) merged by time, and groups the SIP into calls.
func loadCalls(dir string) ([]*ladder.Call, error) {
	if dir == "" {
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
	return calls, nil
}

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
		for i, c := range calls {
			if *all || c.IsInvite() {
				fmt.Printf("%3d  %s  %s\n", i+1, c.ID, c.Summary())
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
	fmt.Printf("wrote %s (call %s); open it in a browser: file://%s\n", path, c.ID, path)
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
