package stunturncli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/stunturn"
)

const defaultCtl = "/run/siplab/stunturn.sock"

type options struct {
	listen, realm, users, ctl, logLevel string
	relayIP                             netip.Addr
	portMin, portMax                    uint16
	maxAllocs, userQuota                int
	maxLifetime                         time.Duration
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{portMin: 40000, portMax: 40999}
	fs := flag.NewFlagSet("stunturn run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.listen, "listen", "", "STUN/TURN UDP `ip:port`, a specific IP (required; the lab: 203.0.113.20:3478)")
	fs.StringVar(&o.realm, "realm", "siplab.test", "TURN long-term credential `realm`")
	fs.StringVar(&o.users, "users", "", "users file `path` (\"user password [blocked]\" per line, the registrar's): TURN accounts (required)")
	fs.Func("relay-ip", "`ip` relayed addresses are bound to and advertised with (default: the -listen IP)", func(v string) error {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		o.relayIP = a
		return nil
	})
	fs.Func("relay-ports", "relay port range `min-max` (default 40000-40999)", func(v string) error {
		lo, hi, ok := strings.Cut(v, "-")
		a, errA := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		b, errB := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if !ok || errA != nil || errB != nil || a == 0 || b < a {
			return fmt.Errorf("%q: want min-max, e.g. 40000-40999, 1 <= min <= max <= 65535", v)
		}
		o.portMin, o.portMax = uint16(a), uint16(b)
		return nil
	})
	fs.IntVar(&o.maxAllocs, "max-allocations", stunturn.DefaultMaxAllocations, "live allocations in all")
	fs.IntVar(&o.userQuota, "user-quota", stunturn.DefaultUserQuota, "live allocations per user (more: 486 Allocation Quota Reached)")
	fs.DurationVar(&o.maxLifetime, "max-lifetime", stunturn.DefaultMaxLifetime, "an allocation ends this long after it was made, refreshed or not")
	fs.StringVar(&o.ctl, "ctl", defaultCtl, "control socket `path` for `stunturn status`; empty disables")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: stunturn run -listen IP:PORT -users FILE [flags]

Serves STUN Binding (RFC 5389: "what is my public address?") and TURN over
UDP (RFC 5766: a relayed address for media that cannot flow directly), with
long-term credentials from the lab's users file.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.listen == "" {
		return nil, fmt.Errorf("%w: -listen ip:port is required", errUsage)
	}
	ap, err := netip.ParseAddrPort(o.listen)
	if err != nil {
		return nil, fmt.Errorf("%w: -listen %q: want ip:port", errUsage, o.listen)
	}
	if !o.relayIP.IsValid() {
		if ap.Addr().IsUnspecified() {
			return nil, fmt.Errorf("%w: -listen %s is unspecified: give -relay-ip, the address peers send relayed media to", errUsage, o.listen)
		}
		o.relayIP = ap.Addr()
	}
	if o.users == "" {
		return nil, fmt.Errorf("%w: -users is required (TURN needs accounts)", errUsage)
	}
	if o.maxAllocs < 1 || o.userQuota < 1 {
		return nil, fmt.Errorf("%w: -max-allocations and -user-quota must be at least 1", errUsage)
	}
	if o.maxLifetime < time.Second {
		return nil, fmt.Errorf("%w: -max-lifetime %s is below 1s", errUsage, o.maxLifetime)
	}
	return o, nil
}

// runDaemon serves until ctx ends. ready, if not nil, gets the server once
// it serves (tests read the bound port and status from it).
func runDaemon(ctx context.Context, args []string, logOut io.Writer, ready func(*stunturn.Server)) error {
	o, err := parseFlags(args, logOut)
	if err != nil {
		return err
	}
	log, err := climain.UsageLogger(o.logLevel, logOut, errUsage)
	if err != nil {
		return err
	}
	users, err := sipauth.LoadUsers(o.users)
	if err != nil {
		return fmt.Errorf("stunturn: users: %w", err)
	}
	// Bind the control socket first: a bad path fails before anything serves.
	var ln net.Listener
	if o.ctl != "" {
		if ln, err = ctl.Listen(o.ctl); err != nil {
			return err
		}
		defer ln.Close()
	}
	conn, err := net.ListenPacket("udp", o.listen)
	if err != nil {
		return fmt.Errorf("stunturn: listen %s: %w", o.listen, err)
	}
	srv, err := stunturn.New(stunturn.Config{
		Conn: conn, Realm: o.realm, Users: users, RelayIP: o.relayIP,
		PortMin: o.portMin, PortMax: o.portMax,
		MaxAllocations: o.maxAllocs, UserQuota: o.userQuota, MaxLifetime: o.maxLifetime,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	errc := make(chan error, 1)
	if ln != nil {
		go func() { errc <- ctl.ServeListener(ctx, ln, mux(srv)) }()
	}
	if ready != nil {
		ready(srv)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("stunturn: ctl: %w", err)
		}
	}
	return nil
}

func mux(srv *stunturn.Server) http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, srv.Status())
	})
	m.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, srv.Reset())
	})
	return m
}
