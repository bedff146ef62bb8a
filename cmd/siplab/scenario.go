package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/scenario"
	"github.com/siplab/siplab/trace/ladder"
)

// scenarioCmd is `siplab scenario list | NAME`: one of the training page's
// call flows played live, then its ladder.
func scenarioCmd(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("scenario", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "the result as JSON (commands, Call-IDs, messages seen, missing)")
	html := fs.String("html", "", "also write the (first) ladder as one HTML file")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: scenario list | scenario <name>", errUsage)
	}
	if pos[0] == "list" {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SCENARIO\tTAKES\tTHE LADDER SHOWS")
		for _, s := range scenario.List() {
			var exp []string
			for _, e := range s.Expect {
				exp = append(exp, e.String())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Takes, strings.Join(exp, " → "))
		}
		return tw.Flush()
	}
	s, err := scenario.Lookup(pos[0])
	if err != nil {
		return err
	}
	cfg := scenario.Config{Runner: r, Names: labNames()}
	if !*asJSON {
		fmt.Printf("» scenario %s: %s (about %s)\n  %s\n", s.Name, s.Title, s.Takes, s.Teaches)
		cfg.Out = os.Stdout
	}
	res, err := scenario.Run(ctx, cfg, s.Name)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(res); eerr != nil {
			return eerr
		}
	}
	if err != nil {
		return err
	}
	if !*asJSON {
		for _, c := range res.Ladders {
			fmt.Println()
			if err := ladder.WriteText(os.Stdout, c); err != nil {
				return err
			}
		}
		fmt.Printf("\n» messages, once per send: %s\n", strings.Join(res.Seen, " → "))
	}
	if *html != "" && len(res.Ladders) > 0 {
		f, err := os.Create(*html)
		if err != nil {
			return err
		}
		err = ladder.WriteHTML(f, res.Ladders[0])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if !res.OK() {
		return fmt.Errorf("the ladder of %s is missing %s", s.Name, strings.Join(res.Missing, ", "))
	}
	if !*asJSON {
		var exp []string
		for _, e := range s.Expect {
			exp = append(exp, e.String())
		}
		fmt.Printf("» as the training page draws it: %s\n", strings.Join(exp, " → "))
	}
	return nil
}
