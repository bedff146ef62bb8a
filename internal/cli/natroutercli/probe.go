package natroutercli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/siplab/siplab/natrouter"
)

func cmdProbe(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: probe udp -to <addr:port> | probe echo -listen <addr:port>", errUsage)
	}
	switch args[0] {
	case "udp":
		return cmdProbeUDP(ctx, args[1:], out)
	case "echo":
		return cmdProbeEcho(ctx, args[1:])
	case "sip":
		return cmdProbeSIP(ctx, args[1:], out)
	default:
		return fmt.Errorf("%w: unknown probe %q (udp, echo, sip)", errUsage, args[0])
	}
}

func cmdProbeUDP(ctx context.Context, args []string, out io.Writer) error {
	p := newProbeFlags("probe udp", "echo server", 2*time.Second, "how long to collect answers")
	dst, err := p.parse(args)
	if err != nil {
		return err
	}
	conn, err := probeSocket(*p.from, *p.gateway)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := natrouter.Probe(ctx, conn, dst, *p.wait)
	if err != nil {
		return err
	}
	return p.report(out, res, len(res.Replies) > 0, func() {
		fmt.Fprintf(out, "probe %s -> %s: %d answer(s)\n", res.Local, res.Remote, len(res.Replies))
		for _, r := range res.Replies {
			fmt.Fprintf(out, "  answer via %s from %s: server saw us as %s\n", r.Via, r.From, r.Seen)
		}
	})
}

// probeFlags are the flags of the probes that send (udp, sip): where to,
// from where, through which gateway, how long to wait, and -json.
type probeFlags struct {
	fs                *flag.FlagSet
	server            string // what -to names, for its errors
	to, from, gateway *string
	wait              *time.Duration
	asJSON            *bool
}

func newProbeFlags(name, server string, wait time.Duration, waitUsage string) *probeFlags {
	fs := newFlags(name)
	return &probeFlags{
		fs:      fs,
		server:  server,
		to:      fs.String("to", "", server+" address:port (required)"),
		from:    fs.String("from", "", "local address:port to send from (default: any)"),
		gateway: fs.String("gateway", "", "first replace the default route with this gateway (needs NET_ADMIN)"),
		wait:    fs.Duration("wait", wait, waitUsage),
		asJSON:  fs.Bool("json", false, "print JSON"),
	}
}

// parse parses args and checks -to and -wait.
func (p *probeFlags) parse(args []string) (netip.AddrPort, error) {
	if err := parse(p.fs, args); err != nil {
		return netip.AddrPort{}, err
	}
	if *p.to == "" {
		return netip.AddrPort{}, fmt.Errorf("%w: -to is required (the %s's address:port)", errUsage, p.server)
	}
	dst, err := netip.ParseAddrPort(*p.to)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: -to %q: want address:port: %w", errUsage, *p.to, err)
	}
	if *p.wait <= 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: -wait must be positive", errUsage)
	}
	return dst, nil
}

// report prints res as JSON or with text, and fails unless it was answered.
func (p *probeFlags) report(out io.Writer, res any, answered bool, text func()) error {
	if *p.asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else {
		text()
	}
	if !answered {
		return errors.New("no answer")
	}
	return nil
}

func cmdProbeEcho(ctx context.Context, args []string) error {
	fs := newFlags("probe echo")
	listen := fs.String("listen", "", "address:port to answer probes on (required)")
	altPort := fs.Int("alt-port", 0, "also answer from this port on the same address (tests NAT filtering)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *listen == "" {
		return fmt.Errorf("%w: -listen is required (address:port to answer on)", errUsage)
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("%w: -listen %q: want address:port: %w", errUsage, *listen, err)
	}
	if *altPort < 0 || *altPort > 65535 || *altPort == int(ap.Port()) && *altPort != 0 {
		return fmt.Errorf("%w: -alt-port %d must be a port different from the listen port", errUsage, *altPort)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return fmt.Errorf("echo socket: %w", err)
	}
	var alt net.PacketConn
	if *altPort != 0 {
		a, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), uint16(*altPort))))
		if err != nil {
			conn.Close()
			return fmt.Errorf("echo alt socket: %w", err)
		}
		alt = a
	}
	log.Info("echo listening", "addr", ap.String(), "alt_port", *altPort)
	return natrouter.ServeEcho(ctx, conn, alt, log)
}

// probeSocket opens the probe's UDP socket on from ("" = any address) after
// pointing the default route at gateway ("" = leave routing alone).
func probeSocket(from, gateway string) (*net.UDPConn, error) {
	var local *net.UDPAddr
	if from != "" {
		ap, err := netip.ParseAddrPort(from)
		if err != nil {
			return nil, fmt.Errorf("%w: -from %q: want address:port: %w", errUsage, from, err)
		}
		local = net.UDPAddrFromAddrPort(ap)
	}
	if gateway != "" {
		gw, err := netip.ParseAddr(gateway)
		if err != nil {
			return nil, fmt.Errorf("%w: -gateway %q: %w", errUsage, gateway, err)
		}
		if err := natrouter.SetDefaultGateway(gw); err != nil {
			return nil, err
		}
	}
	conn, err := net.ListenUDP("udp4", local)
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	return conn, nil
}
