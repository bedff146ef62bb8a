// Command siplabd is every lab daemon in one static binary, busybox-style:
// it runs as the daemon its program name names (argv[0]'s base name), so the
// image carries /siplabd once plus symlinks /registrar, /proxy, ... -> siplabd
// and every command line (`/uaclient status`, `/natrouter set ...`) stays as
// it was. One binary shares the Go runtime and the common packages (sipgo,
// pion, ...) between the daemons; five separate binaries would not fit the
// lab image's 40 MB budget.
//
//	siplabd <daemon> [args...]    # the same, for a binary not reached by a symlink
//	siplabd -list                 # the daemons this binary holds
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/siplab/siplab/internal/cli/b2buacli"
	"github.com/siplab/siplab/internal/cli/carriercli"
	"github.com/siplab/siplab/internal/cli/natroutercli"
	"github.com/siplab/siplab/internal/cli/proxycli"
	"github.com/siplab/siplab/internal/cli/registrarcli"
	"github.com/siplab/siplab/internal/cli/sbccli"
	"github.com/siplab/siplab/internal/cli/scannercli"
	"github.com/siplab/siplab/internal/cli/stunturncli"
	"github.com/siplab/siplab/internal/cli/uaclientcli"
)

// daemons maps a program name to its main. lab-nets/daemons lists the names
// the image links to this binary; TestDaemonsMatchLabList keeps both equal.
var daemons = map[string]func(){
	"registrar": registrarcli.Main,
	"proxy":     proxycli.Main,
	"uaclient":  uaclientcli.Main,
	"natrouter": natroutercli.Main,
	"b2bua":     b2buacli.Main,
	"scanner":   scannercli.Main,
	"sbc":       sbccli.Main,
	"carrier":   carriercli.Main,
	"stunturn":  stunturncli.Main,
}

func main() {
	daemon, args, err := pick(os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "siplabd:", err)
		os.Exit(2)
	}
	if daemon == nil { // -list
		fmt.Println(strings.Join(names(), "\n"))
		return
	}
	// The daemons read os.Args themselves (flag sets, subcommands): hand
	// them the command line they would have had as separate binaries.
	os.Args = args
	daemon()
}

// pick finds the daemon for a command line: by argv[0]'s base name, or, when
// called as siplabd, by the first argument. It returns the argv the daemon
// must see (its own name first).
func pick(argv []string) (func(), []string, error) {
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("no program name")
	}
	name := filepath.Base(argv[0])
	if m, ok := daemons[name]; ok {
		return m, argv, nil
	}
	if len(argv) < 2 {
		return nil, nil, fmt.Errorf("run as one of %s (a symlink to this binary), or as siplabd <daemon> [args]", strings.Join(names(), ", "))
	}
	if argv[1] == "-list" || argv[1] == "--list" {
		return nil, nil, nil
	}
	m, ok := daemons[argv[1]]
	if !ok {
		return nil, nil, fmt.Errorf("unknown daemon %q (have: %s)", argv[1], strings.Join(names(), ", "))
	}
	return m, argv[1:], nil
}

func names() []string {
	out := make([]string, 0, len(daemons))
	for n := range daemons {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
