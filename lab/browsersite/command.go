package browsersite

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/webphone/headless"
)

// Execer runs a node's daemon binary in the lab (exercise.Lab, labctl).
type Execer interface {
	Exec(ctx context.Context, node string, args ...string) ([]byte, error)
}

// Usage is the verb's help.
const Usage = `siplab webphone call <user> <target> [-policy all|relay] [-hold 10s] [-media 20s] [-password P] [-json]
    a browser call from the browser site behind router-w: headless Chromium (fake microphone, 700 Hz)
    in a network namespace on the siplab-browser bridge opens https://203.0.113.5:8443/phone/,
    registers <user> and calls <target>; prints the browser's candidates, pairs (checks sent and
    answered) and selected pair, what it hears, and the SBC gateway's view of the call; hangs up
    after -hold. Fails (exit 1) when the browser hears nothing. Needs root and chromium.`

// ErrNoAudio is returned by Command when the call was set up in SIP but the
// browser heard nothing on a selected pair (ICE failed, or media did not
// flow).
var ErrNoAudio = errors.New("no audio")

// Report is what Command prints: the browser's side and the gateway's.
type Report struct {
	User, Target, Policy string
	Outcome
	// Gateway is the SBC gateway's stats of the call, read while it was
	// up (nil if the SBC had none).
	Gateway *webrtcgw.Stats `json:",omitempty"`
}

// Command is `siplab webphone ...`.
func Command(ctx context.Context, lab Execer, args []string, w io.Writer) error {
	if len(args) == 0 || args[0] != "call" {
		return fmt.Errorf("browsersite: want `webphone call <user> <target>`:\n%s", Usage)
	}
	fs := flag.NewFlagSet("webphone call", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	policy := fs.String("policy", "", "the page's ICE transport policy: all or relay (TURN only); default the SBC's")
	hold := fs.Duration("hold", 0, "keep the call up this long after the answer")
	media := fs.Duration("media", 20*time.Second, "how long to wait for audio after the answer")
	password := fs.String("password", "", "the user's SIP password (default <user>-secret, the lab's users file)")
	asJSON := fs.Bool("json", false, "JSON for scripts")
	var pos []string
	rest := args[1:]
	for len(rest) > 0 { // flags and the two names in any order
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("browsersite: %w\n%s", err, Usage)
		}
		if rest = fs.Args(); len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	if len(pos) != 2 {
		return fmt.Errorf("browsersite: want a user and a target, got %q\n%s", pos, Usage)
	}
	if *policy != "" && *policy != "all" && *policy != "relay" {
		return fmt.Errorf("browsersite: -policy %q: want all or relay", *policy)
	}
	if *password == "" {
		*password = pos[0] + "-secret"
	}
	rep := Report{User: pos[0], Target: pos[1], Policy: *policy}
	o := CallOptions{User: pos[0], Password: *password, Target: pos[1], Policy: *policy, Media: *media, Hold: *hold}
	out, err := Call(ctx, o, func(ctx context.Context, _ headless.State) error {
		rep.Gateway = gatewayCall(ctx, lab)
		return nil
	})
	if err != nil {
		return err
	}
	rep.Outcome = out
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.Write(w)
	}
	if !out.Hearing {
		return fmt.Errorf("%w: %s", ErrNoAudio, rep.Why())
	}
	return nil
}

// gatewayCall is the SBC gateway's newest call, nil if none.
func gatewayCall(ctx context.Context, lab Execer) *webrtcgw.Stats {
	raw, err := lab.Exec(ctx, "sbc", "status", "-json")
	if err != nil {
		return nil
	}
	var st sbc.Status
	if json.Unmarshal(raw, &st) != nil || len(st.WebRTC) == 0 {
		return nil
	}
	return &st.WebRTC[len(st.WebRTC)-1]
}

// Why says in a line why the browser heard nothing.
func (r Report) Why() string {
	p := r.Page
	var why []string
	why = append(why, "browser ICE "+orDash(p.ICE))
	if p.Selected == nil {
		why = append(why, "no selected pair")
	}
	if len(p.Candidates) == 0 {
		why = append(why, "no candidates at all")
	} else if len(p.Local("srflx"))+len(p.Local("relay")) == 0 {
		why = append(why, "host candidates only")
	}
	if r.Gateway != nil {
		why = append(why, "gateway ICE "+r.Gateway.ICE)
	}
	return strings.Join(why, ", ") + " (siplab doctor)"
}

// Write prints the report for people.
func (r Report) Write(w io.Writer) {
	p := r.Page
	pol := r.Policy
	if pol == "" {
		pol = "the SBC's"
	}
	fmt.Fprintf(w, "%s (browser %s behind router-w, ICE policy %s) → %s: answered after %s (ICE gathering included)\n",
		r.User, Addr, pol, r.Target, r.Setup.Round(100*time.Millisecond))
	fmt.Fprintf(w, "browser (getStats): ice %s, gathering %s\n", orDash(p.ICE), orDash(p.Gathering))
	for _, c := range p.Candidates {
		fmt.Fprintf(w, "  %-6s candidate %-5s %s\n", c.Side, c.Type, c.Address)
	}
	for _, pr := range p.Pairs {
		nom := ""
		if pr.Nominated {
			nom = " nominated"
		}
		fmt.Fprintf(w, "  pair %s → %s: %s%s, checks %d sent / %d answered\n", pr.Local, pr.Remote, pr.State, nom, pr.RequestsSent, pr.ResponsesReceived)
	}
	if s := p.Selected; s != nil {
		fmt.Fprintf(w, "  selected: %s <-> %s\n", s.Local, s.Remote) // each "type address"
	} else {
		fmt.Fprintf(w, "  selected: none\n")
	}
	if in := p.Inbound; in != nil {
		fmt.Fprintf(w, "  hears: %s, %d packets, level %.2f\n", orDash(in.Codec), in.PacketsReceived, in.AudioLevel)
	} else {
		fmt.Fprintf(w, "  hears: nothing\n")
	}
	if g := r.Gateway; g != nil {
		fmt.Fprintf(w, "gateway (siplab exec sbc status): %s: ice %s, pair %s; browser→core %d pkts %.0f Hz, core→browser %d pkts %.0f Hz\n",
			g.Name, g.ICE, orDash(g.SelectedPair), g.ToCore.Packets, g.ToCore.ToneHz, g.ToBrowser.Packets, g.ToBrowser.ToneHz)
	} else {
		fmt.Fprintf(w, "gateway: no call at the SBC\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
