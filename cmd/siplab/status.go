package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/siplab/siplab/labctl"
)

// nodeStatus is one node in `siplab status -json`.
type nodeStatus struct {
	labctl.Node
	// Daemon is the node daemon's own `status -json` document.
	Daemon json.RawMessage `json:"daemon,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func status(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("the lab is not up (run `siplab up`)")
	}
	all := make([]nodeStatus, 0, len(nodes))
	for _, n := range nodes {
		st := nodeStatus{Node: n}
		if n.Running && n.Binary != "" {
			var raw json.RawMessage
			if err := r.Status(ctx, n, &raw); err != nil {
				st.Error = err.Error()
			} else {
				st.Daemon = raw
			}
		}
		all = append(all, st)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tADDRESSES\tSUMMARY")
	for _, st := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.Role, st.State, addresses(st.Addresses), summary(st))
	}
	return tw.Flush()
}

func addresses(m map[string]string) string {
	var parts []string
	for net, ip := range m {
		parts = append(parts, net+"="+ip)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// summary is the one line each daemon puts in its status for people.
func summary(st nodeStatus) string {
	if st.Error != "" {
		return "error: " + st.Error
	}
	var doc struct {
		Summary string `json:"summary"`
	}
	if len(st.Daemon) > 0 && json.Unmarshal(st.Daemon, &doc) == nil {
		return doc.Summary
	}
	return ""
}
