// Package registrarcli holds the main of the registrar command (cmd/registrar, and siplabd when
// invoked as registrar): it runs the lab's SIP registrar and location service.
//
//	registrar -sip 10.0.0.20:5060 -http 10.0.0.20:8080 -realm siplab.test \
//	    -users /etc/siplab/users -data /var/lib/siplab/registrar \
//	    -trusted-proxy 10.0.0.10/32
//
// SIP (UDP and TCP) on -sip; the location API (GET /v1/location/{user},
// GET /v1/bindings) and GET /v1/status on -http. Client verbs, talking to
// the control socket (-ctl):
//
//	registrar status [-json]
//	registrar set auth_fail_limit|auth_fail_window|auth_block_for|max_transactions <value>
//	registrar unblock <ip>
//	registrar reset                  (settings to startup values, every block lifted)
//
// See registrar/README.md.
package registrarcli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/sip/txlimit"
)

// Main runs registrar with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "registrar", Code: climain.UsageExits2(errUsage)}, func(ctx context.Context) error {
		if len(os.Args) > 1 {
			// A scratch image has no curl: the client verbs are
			// subcommands talking to the daemon's control socket.
			switch os.Args[1] {
			case "status":
				return status(ctx, os.Args[2:], os.Stdout)
			case "set":
				return cmdSet(ctx, os.Args[2:], os.Stdout)
			case "unblock":
				return cmdUnblock(ctx, os.Args[2:], os.Stdout)
			case "reset":
				return cmdReset(ctx, os.Args[2:], os.Stdout)
			}
		}
		return run(ctx, os.Args[1:], os.Stderr, nil)
	})
}

var errUsage = errors.New("usage")

type options struct {
	sip, http, ctl, realm, domain, users, data, logLevel string
	aliases                                              []string
	trusted                                              []netip.Prefix
	minExp, maxExp, defExp                               time.Duration
	maxContacts                                          int
	guard                                                guard.Config
	guardTrusted                                         []netip.Prefix
	maxTx                                                int
}

// seconds is a duration flag that also takes plain seconds ("60"), the
// unit SIP people think in.
type seconds struct{ d *time.Duration }

func (s seconds) String() string {
	if s.d == nil {
		return ""
	}
	return s.d.String()
}

func (s seconds) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*s.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want seconds or a duration like 90s: %w", err)
	}
	*s.d = d
	return nil
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{minExp: 60 * time.Second, maxExp: 24 * time.Hour, defExp: time.Hour, guard: guard.AuthOnly()}
	fs := flag.NewFlagSet("registrar", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.sip, "sip", "127.0.0.1:5060", "SIP listen `ip:port` (UDP and TCP; a specific IP, not 0.0.0.0)")
	fs.StringVar(&o.http, "http", "127.0.0.1:8080", "HTTP listen `ip:port` for the location API and /v1/status; empty disables")
	fs.StringVar(&o.ctl, "ctl", defaultCtl, "control socket `path` serving the same API as -http (for `registrar status`); empty disables")
	fs.StringVar(&o.realm, "realm", "", "digest realm (default: -domain)")
	fs.StringVar(&o.domain, "domain", "", "SIP domain served, AORs are sip:user@domain (default: -realm)")
	fs.StringVar(&o.users, "users", "", "users file `path`: one \"user password [blocked]\" per line, # comments (required)")
	fs.StringVar(&o.data, "data", "registrar-data", "`dir` for the binding journal and snapshot; empty keeps bindings in memory only")
	fs.Var(seconds{&o.minExp}, "min-expires", "shortest registration accepted; shorter gets 423 (seconds or duration; negative disables)")
	fs.Var(seconds{&o.maxExp}, "max-expires", "longest registration granted; longer is clamped")
	fs.Var(seconds{&o.defExp}, "default-expires", "registration time when the phone asks for none")
	fs.IntVar(&o.maxContacts, "max-contacts", 16, "most contacts one user may register")
	fs.IntVar(&o.guard.FailedAuthLimit, "auth-fail-limit", o.guard.FailedAuthLimit, "wrong passwords from one source within -auth-fail-window that block it (0: never block; live: set auth_fail_limit)")
	fs.Var(seconds{&o.guard.FailedAuthWindow}, "auth-fail-window", "window of -auth-fail-limit (seconds or duration)")
	fs.Var(seconds{&o.guard.BlockFor}, "auth-block-for", "how long a blocked source gets 403 (seconds or duration)")
	fs.Func("guard-trust", "`cidr,...` never blocked for failed auth (an SBC or PBX fronting many users); -trusted-proxy sources never are", func(v string) error {
		ps, err := guard.ParsePrefixes(v)
		o.guardTrusted = append(o.guardTrusted, ps...)
		return err
	})
	fs.IntVar(&o.maxTx, "max-transactions", txlimit.Default, "server transactions held at once before requests get 503 (memory bound; 0: no cap)")
	fs.Func("trusted-proxy", "`cidr,...` of proxies whose Path received= parameter is believed (bare IPs allowed)", func(v string) error {
		ps, err := guard.ParsePrefixes(v)
		o.trusted = append(o.trusted, ps...)
		return err
	})
	fs.Func("alias", "`host[:port],...` also accepted as this registrar's domain (the -sip address always is)", func(v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.aliases = append(o.aliases, s)
			}
		}
		return nil
	})
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: registrar -realm DOMAIN -users FILE [flags]

The lab's SIP registrar (RFC 3261 §10) and location service. It challenges
REGISTERs with digest auth, stores for each binding the Contact as written
and the address the REGISTER was seen from, keeps bindings in an fsync'd
journal, and serves them over HTTP:

  GET /v1/location/{user}   bindings of one user (404 if not provisioned)
  GET /v1/bindings          every binding
  GET /v1/status            counts

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.realm == "" && o.domain == "" {
		return nil, fmt.Errorf("%w: -realm or -domain is required", errUsage)
	}
	if o.users == "" {
		return nil, fmt.Errorf("%w: -users is required", errUsage)
	}
	return o, nil
}

// run serves until ctx ends. ready, if not nil, gets the bound addresses.
func run(ctx context.Context, args []string, logOut io.Writer, ready func(sip netip.AddrPort, http net.Addr)) error {
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
		return err
	}
	ep, err := sipnet.Listen(sipnet.Config{Listen: o.sip, UserAgent: "siplab-registrar", Logger: log})
	if err != nil {
		return err
	}
	defer ep.Close()
	// Phones configured with the registrar's IP instead of the domain
	// must still reach their AOR.
	aliases := append(o.aliases, ep.Addr().Addr().String(), ep.Addr().String())
	minExp := o.minExp
	if minExp == 0 {
		minExp = -1 // "-min-expires 0" means no minimum, not the default
	}
	reg, err := registrar.New(registrar.Config{
		Realm:          o.realm,
		Domain:         o.domain,
		Aliases:        aliases,
		Users:          users,
		MinExpires:     minExp,
		MaxExpires:     o.maxExp,
		DefaultExpires: o.defExp,
		MaxContacts:    o.maxContacts,
		DataDir:        o.data,
		TrustedProxies: o.trusted,
		Guard:          &o.guard,
		GuardTrusted:   o.guardTrusted,
		// 0 on the command line is "no cap", the Config's negative.
		MaxTransactions: cmp.Or(o.maxTx, -1),
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer reg.Close()
	reg.Attach(ep)
	if err := ep.Start(ctx); err != nil {
		return err
	}
	log.Info("sip listening", "addr", ep.Addr().String(), "transports", "udp,tcp")

	var httpAddr net.Addr
	errc := make(chan error, 1)
	if o.http != "" {
		ln, err := net.Listen("tcp", o.http)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		httpAddr = ln.Addr()
		// Requests end with ctx: a watch stream (the proxies' location
		// caches) never goes idle, so Shutdown alone would wait for it.
		srv := &http.Server{Handler: mux(reg), ReadHeaderTimeout: 5 * time.Second,
			BaseContext: func(net.Listener) context.Context { return ctx }}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info("http listening", "addr", httpAddr.String())
	}
	if o.ctl != "" {
		ln, err := ctl.Listen(o.ctl)
		if err != nil {
			return err
		}
		go func() {
			if err := ctl.ServeListener(ctx, ln, mux(reg)); err != nil {
				errc <- fmt.Errorf("ctl: %w", err)
			}
		}()
	}
	if ready != nil {
		ready(ep.Addr(), httpAddr)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		return err
	}
	// Stop taking requests before the journal closes.
	ep.Close()
	return reg.Close()
}

func mux(reg *registrar.Registrar) http.Handler {
	m := http.NewServeMux()
	loc := location.NewHandler(reg)
	m.Handle("/v1/location/", loc)
	m.Handle("/v1/bindings", loc)
	m.Handle("/v1/watch", loc)
	m.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(reg.Status())
	})
	m.HandleFunc("GET /v1/settings", func(w http.ResponseWriter, _ *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, reg.Settings())
	})
	m.HandleFunc("POST /v1/set", ctl.SetHandler(reg.Set, registrar.ErrUnknownSetting))
	m.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, reg.Reset())
	})
	m.HandleFunc("POST /v1/unblock", guard.UnblockHandler("registrar", reg.Unblock))
	return m
}

type (
	setRequest     = ctl.SetRequest
	unblockRequest = ctl.UnblockRequest
	unblockResult  = ctl.UnblockResult
)

// clientArgs parses a client verb's -ctl flag, before or after its
// positional arguments.
func clientArgs(name string, args []string) (string, []string, error) {
	fs := flag.NewFlagSet("registrar "+name, flag.ContinueOnError)
	sock := fs.String("ctl", defaultCtl, "the daemon's control socket")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return *sock, pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cmdSet changes a live setting: registrar set auth_fail_limit 20.
func cmdSet(ctx context.Context, args []string, out io.Writer) error {
	sock, pos, err := clientArgs("set", args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: registrar set <%s> <value> [-ctl path]", errUsage, strings.Join(registrar.SettingNames(), "|"))
	}
	var s registrar.Settings
	if err := (ctl.Client{Socket: sock}).Post(ctx, "/v1/set", setRequest{Name: pos[0], Value: pos[1]}, &s); err != nil {
		return err
	}
	writeSettings(out, s)
	return nil
}

func writeSettings(out io.Writer, s registrar.Settings) {
	fmt.Fprintf(out, "auth_fail_limit %d, auth_fail_window %s, auth_block_for %s, max_transactions %d\n",
		s.FailLimit, s.FailWindow, s.BlockFor, s.MaxTransactions)
}

// cmdUnblock lifts a block: registrar unblock 203.0.113.2.
func cmdUnblock(ctx context.Context, args []string, out io.Writer) error {
	sock, pos, err := clientArgs("unblock", args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: registrar unblock <ip> [-ctl path]", errUsage)
	}
	var res unblockResult
	if err := (ctl.Client{Socket: sock}).Post(ctx, "/v1/unblock", unblockRequest{Source: pos[0]}, &res); err != nil {
		return err
	}
	fmt.Fprintln(out, res)
	return nil
}

// cmdReset puts the startup settings back and lifts every block.
func cmdReset(ctx context.Context, args []string, out io.Writer) error {
	sock, pos, err := clientArgs("reset", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: registrar reset [-ctl path]", errUsage)
	}
	var res registrar.ResetResult
	if err := (ctl.Client{Socket: sock}).Post(ctx, "/v1/reset", struct{}{}, &res); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored [%s], unblocked [%s]\n", strings.Join(res.Restored, " "), strings.Join(res.Unblocked, " "))
	return nil
}

const defaultCtl = "/run/siplab/registrar.sock"

// status prints the registrar's status and bindings from its control socket.
func status(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("registrar status", flag.ContinueOnError)
	sock := fs.String("ctl", defaultCtl, "the daemon's control socket")
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	c := ctl.Client{Socket: *sock}
	var st registrar.Status
	if err := c.Get(ctx, "/v1/status", &st); err != nil {
		return err
	}
	var all location.BindingsResult
	if err := c.Get(ctx, "/v1/bindings", &all); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			registrar.Status
			Registrations []location.Binding `json:"registrations"`
		}{st, all.Bindings})
	}
	fmt.Fprintf(out, "registrar for %s (realm %s): %d users, %d bindings\n", st.Domain, st.Realm, st.Users, st.Bindings)
	writeSettings(out, st.Settings)
	fmt.Fprintf(out, "failed auths %d, transactions held %d, refused for the cap %d\n", st.FailedAuths, st.Transactions, st.Overloaded)
	for _, b := range st.Blocked {
		fmt.Fprintf(out, "  blocked %s until %s (%s), %d requests refused\n", b.Source, b.Until.Format("15:04:05"), b.Reason, b.Hits)
	}
	for _, b := range all.Bindings {
		fmt.Fprintf(out, "  %s\n    contact as written: %s\n    seen on the wire:   %s/%s\n    expires in %s\n",
			b.AOR, b.Contact, b.Source, b.Transport, time.Until(b.Expires).Round(time.Second))
	}
	return nil
}
