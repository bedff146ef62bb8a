package proxycli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/txlimit"
)

// guardFlags adds the failed-auth guard's and the transaction cap's flags.
func guardFlags(fs *flag.FlagSet) (*guard.Config, *[]netip.Prefix, *int) {
	g := guard.AuthOnly()
	var trusted []netip.Prefix
	fs.IntVar(&g.FailedAuthLimit, "auth-fail-limit", g.FailedAuthLimit, "wrong passwords from one source within -auth-fail-window that block it (0: never block; live: set auth_fail_limit)")
	fs.DurationVar(&g.FailedAuthWindow, "auth-fail-window", g.FailedAuthWindow, "window of -auth-fail-limit")
	fs.DurationVar(&g.BlockFor, "auth-block-for", g.BlockFor, "how long a blocked source gets 403")
	fs.Func("guard-trust", "`cidr,...` never blocked for failed auth (an SBC or PBX fronting many users)", func(v string) error {
		ps, err := guard.ParsePrefixes(v)
		trusted = append(trusted, ps...)
		return err
	})
	maxTx := fs.Int("max-transactions", txlimit.Default, "server transactions held at once before new requests get 503 (memory bound; 0: no cap)")
	return &g, &trusted, maxTx
}

func writeGuard(w io.Writer, g proxy.GuardStatus) {
	s := g.Settings
	fmt.Fprintf(w, "guard: auth_fail_limit %d, auth_fail_window %s, auth_block_for %s, max_transactions %d; failed auths %d, transactions held %d, refused for the cap %d, shed when overloaded %d\n",
		s.FailLimit, s.FailWindow, s.BlockFor, s.MaxTransactions, g.FailedAuths, g.Transactions, g.Overloaded, g.Shed)
	for _, b := range g.Blocked {
		fmt.Fprintf(w, "  blocked %s until %s (%s), %d requests refused\n", b.Source, b.Until.Format("15:04:05"), b.Reason, b.Hits)
	}
}

// cmdUnblock lifts a block: proxy unblock 203.0.113.2.
func cmdUnblock(ctx context.Context, args []string, out io.Writer) error {
	fs, sock, err := clientFlags("unblock", args)
	if err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 1 {
		if err := fs.Parse(pos[1:]); err != nil {
			return err
		}
		pos = append(pos[:1], fs.Args()...)
	}
	if len(pos) != 1 {
		return fmt.Errorf("usage: proxy unblock <ip> [-ctl path]")
	}
	return call(ctx, *sock, "/unblock", ctl.UnblockRequest{Source: pos[0]}, out)
}
