package natroutercli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/siplab/siplab/natrouter"
)

// cmdProbeSIP: natrouter probe sip -to 203.0.113.10:5060 [-size 2000] ...
// A SIP OPTIONS of a chosen size through the router, for ALG checks (does a
// message bigger than one packet survive?) without a phone.
func cmdProbeSIP(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("probe sip")
	to := fs.String("to", "", "SIP server address:port (required)")
	from := fs.String("from", "", "local address:port to send from (default: any)")
	gateway := fs.String("gateway", "", "first replace the default route with this gateway (needs NET_ADMIN)")
	size := fs.Int("size", 0, "pad the OPTIONS to this many bytes (over ~1472 it leaves in IP fragments)")
	wait := fs.Duration("wait", 4*time.Second, "how long to wait for the answer (retransmitting)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("%w: -to is required (the SIP server's address:port)", errUsage)
	}
	dst, err := netip.ParseAddrPort(*to)
	if err != nil {
		return fmt.Errorf("%w: -to %q: want address:port: %w", errUsage, *to, err)
	}
	if *size < 0 || *size > natrouter.MaxSIPProbeSize {
		return fmt.Errorf("%w: -size %d outside [0, %d]", errUsage, *size, natrouter.MaxSIPProbeSize)
	}
	if *wait <= 0 {
		return fmt.Errorf("%w: -wait must be positive", errUsage)
	}
	conn, err := probeSocket(*from, *gateway)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := natrouter.ProbeSIP(ctx, conn, dst, *size, *wait)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else if res.Status != "" {
		fmt.Fprintf(out, "OPTIONS %d bytes %s -> %s: %s after %d transmission(s)\n  via: %s\n", res.Size, res.Local, res.Remote, res.Status, res.Tries, res.Via)
	} else {
		fmt.Fprintf(out, "OPTIONS %d bytes %s -> %s: no answer after %d transmission(s)\n", res.Size, res.Local, res.Remote, res.Tries)
	}
	if res.Status == "" {
		return errors.New("no answer")
	}
	return nil
}
