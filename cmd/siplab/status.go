package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/uaclient"
)

// nodeStatus is one node in `siplab status -json`.
type nodeStatus = labops.NodeStatus

func status(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	all, err := labops.Status(ctx, r)
	if err != nil {
		return err
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
	if err := tw.Flush(); err != nil {
		return err
	}
	writeDetails(os.Stdout, all)
	return nil
}

// writeDetails lists what an intern checks first: where each phone is
// registered from, the routers' NAT mappings, and the calls.
func writeDetails(w io.Writer, all []nodeStatus) {
	var regs, maps, calls, edge, blocked []string
	for _, st := range all {
		switch st.Role {
		case "registrar":
			var doc struct {
				Registrations []location.Binding `json:"registrations"`
				Blocked       []guard.Block      `json:"blocked"`
			}
			if json.Unmarshal(st.Daemon, &doc) == nil {
				for _, b := range doc.Registrations {
					regs = append(regs, fmt.Sprintf("%s\t%s\t%s/%s", b.AOR, b.ContactURI, b.Source, b.Transport))
				}
				blocked = appendBlocks(blocked, st.Name, doc.Blocked)
			}
		case "proxy":
			var doc proxy.Status
			if json.Unmarshal(st.Daemon, &doc) == nil {
				blocked = appendBlocks(blocked, st.Name, doc.Guard.Blocked)
			}
		case "sbc":
			var doc sbc.Status
			if json.Unmarshal(st.Daemon, &doc) == nil {
				for _, r := range doc.Registrations {
					edge = append(edge, fmt.Sprintf("%s\t%s\t%s/%s\t%v\t%ds\t%d/%d", r.AOR, r.Contact, r.Latched, r.Transport, r.NATed, r.ExpiresIn, r.PingsOK, r.PingsSent))
				}
				blocked = appendBlocks(blocked, st.Name, doc.Blocked)
			}
		case "router":
			var doc natrouter.Status
			if json.Unmarshal(st.Daemon, &doc) == nil {
				for _, m := range doc.Mappings {
					maps = append(maps, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d/%d", st.Name, m.Proto, m.Inside, m.Outside, m.Remote, m.PacketsOut, m.PacketsIn))
				}
			}
		case "phone":
			var doc uaclient.Status
			if json.Unmarshal(st.Daemon, &doc) == nil {
				for _, c := range doc.Calls {
					rx, tx := uint64(0), uint64(0)
					if c.Media != nil {
						rx, tx = c.Media.Received.Packets, c.Media.Sent.Packets
					}
					calls = append(calls, fmt.Sprintf("%s\t%s\t%s %s\t%s %d\t%d/%d\t%.0f Hz", st.Name, c.ID, c.Direction, c.Peer, c.State, c.Code, tx, rx, c.ToneHz))
				}
			}
		}
	}
	section(w, "REGISTRATIONS", "AOR\tCONTACT AS WRITTEN\tSEEN ON THE WIRE", regs)
	section(w, "SBC REGISTRATIONS", "AOR\tCONTACT AS WRITTEN\tLATCHED TO\tNATED\tEXPIRES\tPINGS OK/SENT", edge)
	section(w, "BLOCKED SOURCES", "NODE\tSOURCE\tREASON\tUNTIL\tHITS", blocked)
	section(w, "NAT MAPPINGS", "ROUTER\tPROTO\tINSIDE\tOUTSIDE\tREMOTE\tPKTS OUT/IN", maps)
	section(w, "CALLS", "PHONE\tCALL\tPEER\tSTATE\tRTP TX/RX\tHEARS", calls)
}

// appendBlocks adds a node's blocked sources (SBC, registrar, proxy: one
// guard package, one table).
func appendBlocks(rows []string, node string, bs []guard.Block) []string {
	for _, b := range bs {
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%d", node, b.Source, b.Reason, b.Until.Format("15:04:05"), b.Hits))
	}
	return rows
}

func section(w io.Writer, title, header string, rows []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	tw.Flush()
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
