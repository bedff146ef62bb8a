// Package proxycli holds the main of the proxy command (cmd/proxy, and siplabd when
// invoked as proxy): the lab's stateful SIP proxy daemon and its client.
//
//	proxy -sip 203.0.113.10:5060 [-core-sip 10.0.0.10:5060] -registrar 10.0.0.20:5060 \
//	      -location http://10.0.0.20:8080 -domain siplab.test -users /etc/siplab/users \
//	      [-route domain=ip:port ...] [-route-user REGEX=ip:port ...]
//	      [-rport honour|ignore|force] [-contact-fixup auto|on|off] [-record-route on|off] [-ctl /run/siplab/proxy.sock]
//	proxy status [-json] [-ctl path]
//	proxy set <name> <value> [-ctl path]     (rport, received, contact_fixup, record_route, the guard's)
//	proxy unblock <ip> [-ctl path]
//	proxy reset [-ctl path]                  (every toggle back to its startup value)
//
// The image is FROM scratch with no shell, so the client verbs are
// subcommands: docker exec siplab_proxy_1 /proxy set rport ignore
package proxycli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
)

// Main runs proxy with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "proxy"}, func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Stdout)
	})
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return cmdStatus(ctx, args[1:], out)
		case "set":
			return cmdSet(ctx, args[1:], out)
		case "unblock":
			return cmdUnblock(ctx, args[1:], out)
		case "reset":
			fs, sock, err := clientFlags("reset", args[1:])
			if err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return fmt.Errorf("usage: proxy reset [-ctl path]")
			}
			return call(ctx, *sock, "/reset", struct{}{}, out)
		}
	}
	return serve(ctx, args)
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	sipAddr := fs.String("sip", "", "public SIP address ip:port (UDP and TCP), the one phones use")
	coreAddr := fs.String("core-sip", "", "optional second SIP address ip:port on the core network")
	registrar := fs.String("registrar", "", "registrar ip:port REGISTERs are forwarded to")
	locURL := fs.String("location", "", "location service base URL, e.g. http://10.0.0.20:8080")
	domain := fs.String("domain", "siplab.test", "SIP domain routed by location")
	realm := fs.String("realm", "", "digest realm for 407 challenges (default: -domain)")
	users := fs.String("users", "", "users file; without it nothing is challenged")
	authInvites := fs.Bool("auth-invites", true, "challenge INVITEs from our users with 407")
	authOther := fs.Bool("auth-other", false, "also challenge our users' other out-of-dialog requests")
	relay := fs.Bool("relay", false, "forward out-of-dialog requests for other domains (else 403)")
	var routes []proxy.Route
	fs.Func("route", "static route domain=ip:port, repeatable: requests for that Request-URI host go there (e.g. pbx.siplab.test=10.0.0.30:5060)", func(v string) error {
		r, err := proxy.ParseRoute(v)
		if err != nil {
			return err
		}
		routes = append(routes, r)
		return nil
	})
	var userRoutes []proxy.UserRoute
	fs.Func("route-user", "route by Request-URI user REGEX=ip:port, repeatable, anchored, checked before location for our domain (e.g. '^[0-9*#+][0-9*#]*$=10.0.0.30:5060': numbers to the PBX)", func(v string) error {
		r, err := proxy.ParseUserRoute(v)
		if err != nil {
			return err
		}
		userRoutes = append(userRoutes, r)
		return nil
	})
	rport := fs.String("rport", proxy.RPortHonour, "where responses go: honour, ignore (the lost-responses bug) or force")
	received := fs.String("received", "on", "write received=/rport= into the top Via: on|off")
	fixup := fs.String("contact-fixup", proxy.FixupAuto, "route to the address a REGISTER came from when NAT is detected (auto), always (on) or never: the Contact as written (off)")
	recordRoute := fs.String("record-route", "on", "stay in the path of in-dialog requests: on|off")
	timerC := fs.Duration("timer-c", proxy.DefaultTimerC, "how long an INVITE branch may ring before it is cancelled (408)")
	queueDelay := fs.Duration("max-queue-delay", proxy.DefaultMaxQueueDelay, "overload gate: a new request that waited longer than this in the UDP receive queue gets 503 + Retry-After unparsed (0: off)")
	readers := fs.Int("udp-readers", 1, "goroutines reading each UDP socket: more take more calls/s in, but past capacity the backlog then waits as goroutines, unbounded, instead of in the socket's buffer (bench/README.md)")
	maxRunnable := fs.Int("max-runnable", proxy.DefaultMaxRunnable, "overload: the UDP readers pause while more goroutines than this are runnable, so a backlog waits in the socket's buffer where -max-queue-delay refuses it (0: no bound)")
	ctlPath := fs.String("ctl", proxy.DefaultSocket, "control socket path (package ctl); empty disables")
	locWatch := fs.String("location-watch", "on", "keep the registrar's bindings in memory, streamed from its GET /v1/watch (on), or ask it once per call (off)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	capFlags := capflags.Add(fs, "the internet and core sides")
	gcfg, guardTrusted, maxTx := guardFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	if *sipAddr == "" || *locURL == "" {
		return errors.New("-sip and -location are required")
	}
	var loc location.Service = &location.HTTPClient{BaseURL: *locURL}
	switch *locWatch {
	case "on":
		// Bindings streamed from the registrar (GET /v1/watch) instead of
		// one HTTP lookup per call; direct lookups while the stream is down.
		c := location.NewCache(&location.HTTPClient{BaseURL: *locURL}, log)
		go c.Run(ctx)
		loc = c
	case "off":
	default:
		return fmt.Errorf("-location-watch: %q is not on or off", *locWatch)
	}
	settings := proxy.DefaultSettings()
	for name, v := range map[string]string{proxy.SettingRPort: *rport, proxy.SettingReceived: *received,
		proxy.SettingContactFixup: *fixup, proxy.SettingRecordRoute: *recordRoute} {
		if err := settings.Set(name, v); err != nil {
			return err
		}
	}
	cfg := proxy.Config{
		Domain: *domain, Registrar: *registrar, Location: loc,
		AuthInvites: *authInvites, AuthOther: *authOther, Relay: *relay, Routes: routes, UserRoutes: userRoutes, TimerC: *timerC,
		Settings: &settings, Logger: log,
		Guard: gcfg, GuardTrusted: *guardTrusted, MaxTransactions: cmp.Or(*maxTx, -1), // 0 on the command line: no cap
	}
	if *users != "" {
		if *realm == "" {
			*realm = *domain
		}
		table, err := sipauth.LoadUsers(*users)
		if err != nil {
			return err
		}
		if cfg.Auth, err = sipauth.New(sipauth.Config{Realm: *realm, Users: table, Logger: log}); err != nil {
			return err
		}
	} else if *authInvites {
		log.Warn("no -users file: nothing will be challenged")
	}

	// sipgo frees an INVITE client transaction answered 2xx only when its
	// Timer M fires, ended or not, so each call's branch would stay in
	// memory 32 s with its INVITE and 2xx. The proxy relays the 2xx
	// retransmissions for 64*T1 from its own table (proxy/linger.go), so
	// in this process, which runs no user agent, sipgo's Accepted state
	// need not outlast T1.
	sip.Timer_M = proxy.AcceptedBranchHold
	var eps []*sipnet.Endpoint
	for _, addr := range []string{*sipAddr, *coreAddr} {
		if addr == "" {
			continue
		}
		ep, err := sipnet.Listen(sipnet.Config{Listen: addr, UserAgent: "siplab-proxy", Logger: log, MaxQueueDelay: *queueDelay,
			Readers: *readers, MaxRunnable: *maxRunnable})
		if err != nil {
			for _, e := range eps {
				e.Close()
			}
			return err
		}
		eps = append(eps, ep)
	}
	p, err := proxy.New(cfg, eps...)
	if err != nil {
		for _, e := range eps {
			e.Close()
		}
		return err
	}
	defer p.Close()
	// Capture before serving, so the first REGISTER is in the file. The
	// proxy records the platform's edge: its internet side (what phones and
	// routers send to 203.0.113.10) and its core side (what it forwards to
	// the registrar and the PBX), as proxy/internet and proxy/core.
	stopCapture, err := capFlags.StartAt(ctx, log, capflags.At{Name: "internet", Listen: *sipAddr}, capflags.At{Name: "core", Listen: *coreAddr})
	if err != nil {
		return err
	}
	defer stopCapture()
	// Bind the socket before serving SIP: a second proxy on the same
	// socket fails here rather than after it took requests.
	var ln net.Listener
	if *ctlPath != "" {
		if ln, err = ctl.Listen(*ctlPath); err != nil {
			return err
		}
	}
	if err := p.Start(ctx); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	if ln == nil {
		<-ctx.Done()
		log.Info("shutting down")
		return nil
	}
	log.Info("control socket ready", "socket", *ctlPath)
	err = ctl.ServeListener(ctx, ln, p.Handler())
	log.Info("shutting down")
	return err
}

func clientFlags(name string, args []string) (*flag.FlagSet, *string, error) {
	fs := flag.NewFlagSet("proxy "+name, flag.ContinueOnError)
	sock := fs.String("ctl", proxy.DefaultSocket, "the daemon's control socket")
	return fs, sock, fs.Parse(args)
}

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("proxy status", flag.ContinueOnError)
	sock := fs.String("ctl", proxy.DefaultSocket, "the daemon's control socket")
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *asJSON {
		return call(ctx, *sock, "/status", nil, out)
	}
	var buf strings.Builder
	if err := call(ctx, *sock, "/status", nil, &buf); err != nil {
		return err
	}
	var st proxy.Status
	if err := json.Unmarshal([]byte(buf.String()), &st); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	writeStatus(out, st)
	return nil
}

func writeStatus(w io.Writer, st proxy.Status) {
	fmt.Fprintf(w, "proxy for %s on %s, registrar %s, auth %v, timer C %s\n",
		st.Domain, strings.Join(st.Listen, " "), st.Registrar, st.Auth, st.TimerC)
	for _, r := range st.Routes {
		fmt.Fprintf(w, "  route %s\n", r)
	}
	for _, r := range st.UserRoutes {
		fmt.Fprintf(w, "  route-user %s\n", r)
	}
	for _, name := range proxy.SettingNames() {
		v, _ := st.Settings.Get(name)
		fmt.Fprintf(w, "  %-14s %s\n", name, v)
	}
	writeGuard(w, st.Guard)
	methods := make([]string, 0, len(st.Stats.Requests))
	for m := range st.Stats.Requests {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	fmt.Fprint(w, "requests:")
	for _, m := range methods {
		fmt.Fprintf(w, " %s=%d", m, st.Stats.Requests[m])
	}
	fmt.Fprintf(w, "\nforwarded %d, active transactions %d, loops %d, relay denied %d\n", st.Stats.Forwarded, st.Stats.ActiveTransactions, st.Stats.Loops, st.Stats.RelayDenied)
	for _, c := range st.NAT {
		tests := strings.Join(c.Tests, ",")
		if tests == "" {
			tests = "no NAT test fired"
		}
		what := "at REGISTER"
		if c.RoutedTo != "" {
			what = "contact_fixup " + c.Mode + " -> " + c.RoutedTo
		}
		fmt.Fprintf(w, "  nat %s %s from %s: %s (%s)\n", c.AOR, c.Contact, c.Source, tests, what)
	}
}

func cmdSet(ctx context.Context, args []string, out io.Writer) error {
	fs, sock, err := clientFlags("set", args)
	if err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 2 { // flags after the arguments: "set rport ignore -ctl ..."
		if err := fs.Parse(pos[2:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			pos = append(pos, "extra")
		} else {
			pos = pos[:2]
		}
	}
	if len(pos) != 2 {
		return fmt.Errorf("usage: proxy set <%s> <value> [-ctl path]", strings.Join(append(proxy.SettingNames(), proxy.GuardSettingNames()...), "|"))
	}
	return call(ctx, *sock, "/set", ctl.SetRequest{Name: pos[0], Value: pos[1]}, out)
}

// call sends one control request (in nil: a GET) and copies the reply,
// the daemon's indented JSON, to out.
func call(ctx context.Context, sock, path string, in any, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := ctl.Client{Socket: sock}
	var reply json.RawMessage
	var err error
	if in == nil {
		err = c.Get(ctx, path, &reply)
	} else {
		err = c.Post(ctx, path, in, &reply)
	}
	if err != nil {
		var ce *ctl.Error
		if errors.As(err, &ce) {
			return errors.New(strings.TrimPrefix(ce.Message, "proxy: "))
		}
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", reply)
	return err
}
