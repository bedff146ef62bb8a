// Package sbccli holds the main of the sbc command (cmd/sbc, and siplabd
// when invoked as sbc): the platform's session border controller and its
// client.
//
//	sbc -sip 203.0.113.5:5060 -core-sip 10.0.0.5:5060 -next-hop 10.0.0.10:5060 \
//	    [-media-ip 203.0.113.5] [-core-media-ip 10.0.0.5] \
//	    [-trunk 203.0.113.40:5060] [-trunk-inbound 10.0.0.30:5060] \
//	    [-latching learn|strict|off] [-nat-expires 60s] [-keepalive-interval 15s] [-topology-hiding on|off] \
//	    [-register-rate 2] [-invite-rate 2] [-burst 10] [-failed-auth-limit 10] \
//	    [-failed-auth-window 1m] [-block-for 5m] [-tls 203.0.113.5:5061 -tls-dir /etc/siplab/tls] \
//	    [-wss 203.0.113.5:8443 [-webrtc-ice ip:port] [-webrtc-ice-servers stun:...,turn:...] [-webrtc-ice-mode lite|full]] \
//	    [-ctl /run/siplab/sbc.sock]
//	sbc status [-json] [-ctl path]
//	sbc get [name] [-ctl path]
//	sbc set <latching|nat_expires|keepalive_interval|topology_hiding> <value> [-ctl path]
//	sbc unblock <ip> [-ctl path]
//	sbc reset [-json] [-ctl path]     (calls, cached registrations, blocks, settings back to startup)
//
// The image is FROM scratch with no shell, so the client verbs are
// subcommands: docker exec siplab_sbc_1 /sbc set latching off
package sbccli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/sipnet"
)

const defaultCtl = "/run/siplab/sbc.sock"

var errUsage = errors.New("usage")

// Main runs sbc with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "sbc", Code: climain.UsageExits2(errUsage)}, func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	})
}

func run(ctx context.Context, args []string, out, stderr io.Writer) error {
	verbs := map[string]climain.Verb{"status": cmdStatus, "set": cmdSet, "get": cmdGet, "unblock": cmdUnblock, "reset": cmdReset}
	return climain.Dispatch(ctx, args, out, verbs, func(ctx context.Context, args []string) error {
		return serve(ctx, args, stderr)
	})
}

// options are the daemon's flags, parsed into a Config by config().
type options struct {
	sip, coreSIP, mediaIP, coreMediaIP, nextHop, trunk, trunkInbound string
	latching, natExpires, keepalive, rtpPorts, topology              string
	registerRate, inviteRate                                         float64
	burst, failedAuthLimit                                           int
	failedAuthWindow, blockFor                                       time.Duration
	tls, tlsDir                                                      string
	ctl, logLevel                                                    string
	capture                                                          *capflags.Flags
	web                                                              *webFlags // webrtc.go
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	g := guard.Default()
	o := &options{}
	fs := flag.NewFlagSet("sbc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sip, "sip", "", "public (access) SIP address ip:port, UDP and TCP: what phones and the trunk reach")
	fs.StringVar(&o.coreSIP, "core-sip", "", "core SIP address ip:port: what the proxy and PBX reach")
	fs.StringVar(&o.mediaIP, "media-ip", "", "access-side RTP relay address written into SDP (default: the -sip IP)")
	fs.StringVar(&o.coreMediaIP, "core-media-ip", "", "core-side RTP relay address (default: the -core-sip IP)")
	fs.StringVar(&o.nextHop, "next-hop", "", "core next hop ip:port for registrations and phone calls (the proxy's core address)")
	fs.StringVar(&o.trunk, "trunk", "", "carrier ip:port on the access side: +E.164 calls go there; its IP is a trusted trunk")
	fs.StringVar(&o.trunkInbound, "trunk-inbound", "", "core ip:port for calls from the trunk (the PBX; default -next-hop)")
	fs.StringVar(&o.latching, "latching", "learn", "media latching: learn, strict or off")
	fs.StringVar(&o.natExpires, "nat-expires", "60s", "registration expiry granted to phones behind NAT")
	fs.StringVar(&o.keepalive, "keepalive-interval", "15s", "OPTIONS pings to NATed registrations; 0 = off")
	fs.StringVar(&o.topology, "topology-hiding", "on", "on: nothing the core wrote reaches the internet; off: show the classic leaks")
	fs.StringVar(&o.rtpPorts, "rtp-ports", "20000-29999", "RTP relay port range lo-hi")
	fs.Float64Var(&o.registerRate, "register-rate", g.RegisterRate, "REGISTERs per second per source (sustained)")
	fs.Float64Var(&o.inviteRate, "invite-rate", g.InviteRate, "INVITEs per second per source (sustained)")
	fs.IntVar(&o.burst, "burst", g.Burst, "requests a source may send at once above its rate")
	fs.IntVar(&o.failedAuthLimit, "failed-auth-limit", g.FailedAuthLimit, "401/403/407 answers to one source within the window before it is blocked (0 = never)")
	fs.DurationVar(&o.failedAuthWindow, "failed-auth-window", g.FailedAuthWindow, "window for -failed-auth-limit")
	fs.DurationVar(&o.blockFor, "block-for", g.BlockFor, "how long a source stays blocked")
	fs.StringVar(&o.tls, "tls", "", "public SIP-over-TLS listener ip:port (same IP as -sip, 5061 by convention); empty: no TLS")
	fs.StringVar(&o.tlsDir, "tls-dir", "/etc/siplab/tls", "certificate directory for -tls: the lab CA is made there if missing (labtls), the SBC's certificate names its -sip and -core-sip IPs")
	fs.StringVar(&o.ctl, "ctl", climain.EnvOr("SBC_CTL", defaultCtl), "control socket path")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.capture = capflags.Add(fs, "the access (internet) and core sides")
	o.web = addWebFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return o, nil
}

// config turns the flags into an sbc.Config (validated again by sbc.New).
func (o *options) config(log *slog.Logger) (sbc.Config, error) {
	var cfg sbc.Config
	if o.sip == "" || o.coreSIP == "" || o.nextHop == "" {
		return cfg, fmt.Errorf("%w: -sip, -core-sip and -next-hop are required", errUsage)
	}
	var err error
	if cfg.NextHop, err = netip.ParseAddrPort(o.nextHop); err != nil {
		return cfg, fmt.Errorf("%w: -next-hop: %w", errUsage, err)
	}
	for _, f := range []struct {
		name, v string
		dst     *netip.AddrPort
	}{{"-trunk", o.trunk, &cfg.Trunk}, {"-trunk-inbound", o.trunkInbound, &cfg.TrunkInbound}} {
		if f.v == "" {
			continue
		}
		if *f.dst, err = netip.ParseAddrPort(f.v); err != nil {
			return cfg, fmt.Errorf("%w: %s: %w", errUsage, f.name, err)
		}
	}
	for _, f := range []struct {
		name, v string
		dst     *netip.Addr
	}{{"-media-ip", o.mediaIP, &cfg.MediaIP}, {"-core-media-ip", o.coreMediaIP, &cfg.CoreMediaIP}} {
		if f.v == "" {
			continue
		}
		if *f.dst, err = netip.ParseAddr(f.v); err != nil {
			return cfg, fmt.Errorf("%w: %s: %w", errUsage, f.name, err)
		}
	}
	lo, hi, ok := strings.Cut(o.rtpPorts, "-")
	if cfg.RelayPortMin, err = strconv.Atoi(lo); !ok || err != nil {
		return cfg, fmt.Errorf("%w: -rtp-ports %q: want lo-hi", errUsage, o.rtpPorts)
	}
	if cfg.RelayPortMax, err = strconv.Atoi(hi); err != nil {
		return cfg, fmt.Errorf("%w: -rtp-ports %q: want lo-hi", errUsage, o.rtpPorts)
	}
	st := sbc.DefaultSettings()
	for name, v := range map[string]string{sbc.SettingLatching: o.latching, sbc.SettingNATExpires: o.natExpires,
		sbc.SettingKeepaliveInterval: o.keepalive, sbc.SettingTopologyHiding: o.topology, sbc.SettingWebRTCICEServers: o.web.iceServers} {
		if err := st.Set(name, v); err != nil {
			return cfg, fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	cfg.Settings = &st
	g := guard.Default()
	g.RegisterRate, g.InviteRate, g.Burst = o.registerRate, o.inviteRate, o.burst
	g.FailedAuthLimit, g.FailedAuthWindow, g.BlockFor = o.failedAuthLimit, o.failedAuthWindow, o.blockFor
	cfg.Guard = &g
	// The status reports it: the console's copy of the page uses it.
	cfg.WebRTCICEPolicy = o.web.policy
	cfg.Logger = log
	return cfg, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := climain.UsageLogger(o.logLevel, stderr, errUsage)
	if err != nil {
		return err
	}
	cfg, err := o.config(log)
	if err != nil {
		return err
	}
	ln, err := ctl.Listen(o.ctl)
	if err != nil {
		return err
	}
	accessCfg := sipnet.Config{Listen: o.sip, UserAgent: "siplab-sbc", Logger: log.With("realm", "access")}
	if o.tls != "" {
		if accessCfg.TLS, err = o.tlsConfig(); err != nil {
			ln.Close()
			return err
		}
		accessCfg.TLSListen = o.tls
	}
	accessEP, err := sipnet.Listen(accessCfg)
	if err != nil {
		ln.Close()
		return err
	}
	coreEP, err := sipnet.Listen(sipnet.Config{Listen: o.coreSIP, UserAgent: "siplab-sbc", Logger: log.With("realm", "core")})
	if err != nil {
		ln.Close()
		accessEP.Close()
		return err
	}
	b, err := sbc.New(cfg, accessEP, coreEP)
	if err != nil {
		ln.Close()
		return err
	}
	if err := o.web.serve(b, o.sip, o.tlsConfig, log); err != nil {
		ln.Close()
		b.Close()
		return err
	}
	return climain.ServeCalls(ctx, b, ln, func(ctx context.Context) (func(), error) {
		// "internet" (-sip) and "core" (-core-sip) into <node>.pcapng: the
		// difference between the two is the topology-hiding proof.
		stop, err := o.capture.StartAt(ctx, log, capflags.At{Name: "internet", Listen: o.sip}, capflags.At{Name: "core", Listen: o.coreSIP})
		if errors.Is(err, capflags.ErrUsage) {
			err = fmt.Errorf("%w: %w", errUsage, err)
		}
		return stop, err
	}, log)
}

// tlsConfig makes (or reuses) the lab CA and the SBC's certificate in
// -tls-dir, naming both of its SIP IPs.
func (o *options) tlsConfig() (*tls.Config, error) {
	var hosts []netip.Addr
	for _, a := range []string{o.sip, o.coreSIP} {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", errUsage, a, err)
		}
		hosts = append(hosts, ap.Addr())
	}
	cfg, err := labtls.EnsureServerCert(o.tlsDir, hosts)
	if err != nil {
		return nil, fmt.Errorf("sbc: tls certificate in %s: %w", o.tlsDir, err)
	}
	return cfg, nil
}

// clientFlags parses a verb's flags, which may come before or after its
// positional arguments ("set latching off -ctl x").
func clientFlags(name string, args []string, out io.Writer) (sock string, asJSON bool, pos []string, err error) {
	return climain.ClientFlags("sbc "+name, "SBC_CTL", defaultCtl, args, out)
}

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, pos, err := clientFlags("status", args, out)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: sbc status [-json] [-ctl path]", errUsage)
	}
	return climain.Show(ctx, sock, http.MethodGet, "/status", nil, asJSON, out, sbc.WriteText)
}

func cmdGet(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, pos, err := clientFlags("get", args, out)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: sbc get [name] [-json] [-ctl path]", errUsage)
	}
	var all map[string]string
	if err := (ctl.Client{Socket: sock}).Get(ctx, "/settings", &all); err != nil {
		return err
	}
	if len(pos) == 1 {
		v, ok := all[strings.ReplaceAll(strings.ToLower(pos[0]), "-", "_")]
		if !ok {
			return fmt.Errorf("%w: unknown setting %q (known: %s)", errUsage, pos[0], strings.Join(sbc.SettingNames(), ", "))
		}
		fmt.Fprintln(out, v)
		return nil
	}
	if asJSON {
		return json.NewEncoder(out).Encode(all)
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "%s = %s\n", n, all[n])
	}
	return nil
}

func cmdSet(ctx context.Context, args []string, out io.Writer) error {
	sock, _, pos, err := clientFlags("set", args, out)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: sbc set <%s> <value> [-ctl path]", errUsage, strings.Join(sbc.SettingNames(), "|"))
	}
	var all map[string]string
	if err := (ctl.Client{Socket: sock}).Post(ctx, "/set", sbc.SetRequest{Name: pos[0], Value: pos[1]}, &all); err != nil {
		return err
	}
	n := strings.ReplaceAll(strings.ToLower(pos[0]), "-", "_")
	fmt.Fprintf(out, "%s = %s\n", n, all[n])
	return nil
}

func cmdUnblock(ctx context.Context, args []string, out io.Writer) error {
	sock, _, pos, err := clientFlags("unblock", args, out)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: sbc unblock <ip> [-ctl path]", errUsage)
	}
	var res sbc.UnblockResult
	if err := (ctl.Client{Socket: sock}).Post(ctx, "/unblock", sbc.UnblockRequest{Source: pos[0]}, &res); err != nil {
		return err
	}
	fmt.Fprintln(out, res)
	return nil
}

func cmdReset(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, pos, err := clientFlags("reset", args, out)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: sbc reset [-json] [-ctl path]", errUsage)
	}
	return climain.Show(ctx, sock, http.MethodPost, "/reset", nil, asJSON, out, func(out io.Writer, res sbc.ResetResult) {
		var lifted []string
		for _, b := range res.Unblocked {
			lifted = append(lifted, b.Source.String())
		}
		fmt.Fprintf(out, "%d call(s) ended, %d registration(s) dropped, unblocked [%s], restored [%s]\n",
			res.CallsEnded, res.Registrations, strings.Join(lifted, " "), strings.Join(res.Restored, " "))
	})
}
