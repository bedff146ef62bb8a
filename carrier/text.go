package carrier

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/siplab/siplab/uaclient"
)

// WriteText prints a control result for people; phone results (calls,
// options, waits) print as the phone CLI prints them.
func WriteText(w io.Writer, verb string, out any) {
	switch v := out.(type) {
	case Status:
		printStatus(w, v)
	case PeerStatus:
		printPeer(w, v)
	default:
		uaclient.WriteText(w, verb, out)
	}
}

func printStatus(w io.Writer, s Status) {
	fmt.Fprintf(w, "%s (%s): sip %s", s.Name, s.Role, s.SIP)
	if s.TLS != "" {
		fmt.Fprintf(w, ", tls %s", s.TLS)
	}
	fmt.Fprintf(w, "\n  numbers %s, answer after %s, tone %.0f Hz, default caller %s\n",
		strings.Join(s.Numbers, " "), s.AnswerAfter, s.ToneHz, s.DefaultFrom)
	fmt.Fprintf(w, "  trusted sources %s (others get 403)\n", strings.Join(s.Trusted, " "))
	printPeer(w, s.Peer)
	if len(s.Calls) == 0 {
		fmt.Fprintln(w, "no calls")
	}
	for _, c := range s.Calls {
		uaclient.WriteText(w, "status", c)
	}
}

func printPeer(w io.Writer, p PeerStatus) {
	fmt.Fprintf(w, "peer %s/%s: %s", p.Addr, p.Transport, p.State)
	if p.LastCode != 0 {
		fmt.Fprintf(w, " (last OPTIONS %d %s", p.LastCode, p.LastReason)
		if p.State == PeerUp {
			fmt.Fprintf(w, ", rtt %d ms", p.RTTMs)
		}
		fmt.Fprint(w, ")")
	}
	if p.Error != "" {
		fmt.Fprintf(w, " (%s)", p.Error)
	}
	fmt.Fprintf(w, "; pings every %s, %d sent, %d answered", p.Interval, p.Sent, p.Answered)
	if !p.LastUp.IsZero() {
		fmt.Fprintf(w, ", last up %s ago", time.Since(p.LastUp).Round(time.Second))
	}
	fmt.Fprintln(w)
}
