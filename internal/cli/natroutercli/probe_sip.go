package natroutercli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/siplab/siplab/natrouter"
)

// cmdProbeSIP: natrouter probe sip -to 203.0.113.10:5060 [-size 2000] ...
// A SIP OPTIONS of a chosen size through the router, for ALG checks (does a
// message bigger than one packet survive?) without a phone.
func cmdProbeSIP(ctx context.Context, args []string, out io.Writer) error {
	p := newProbeFlags("probe sip", "SIP server", 4*time.Second, "how long to wait for the answer (retransmitting)")
	size := p.fs.Int("size", 0, "pad the OPTIONS to this many bytes (over ~1472 it leaves in IP fragments)")
	dst, err := p.parse(args)
	if err != nil {
		return err
	}
	if *size < 0 || *size > natrouter.MaxSIPProbeSize {
		return fmt.Errorf("%w: -size %d outside [0, %d]", errUsage, *size, natrouter.MaxSIPProbeSize)
	}
	conn, err := probeSocket(*p.from, *p.gateway)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := natrouter.ProbeSIP(ctx, conn, dst, *size, *p.wait)
	if err != nil {
		return err
	}
	return p.report(out, res, res.Status != "", func() {
		if res.Status != "" {
			fmt.Fprintf(out, "OPTIONS %d bytes %s -> %s: %s after %d transmission(s)\n  via: %s\n", res.Size, res.Local, res.Remote, res.Status, res.Tries, res.Via)
		} else {
			fmt.Fprintf(out, "OPTIONS %d bytes %s -> %s: no answer after %d transmission(s)\n", res.Size, res.Local, res.Remote, res.Tries)
		}
	})
}
