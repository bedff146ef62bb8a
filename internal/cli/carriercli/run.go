package carriercli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipnet"
)

const (
	defaultCtl = "/run/siplab/carrier.sock"
	defaultCA  = "/etc/siplab/tls/ca.pem"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.TrimSpace(v))
	return nil
}

// errUsage marks flag mistakes (exit 2).
var errUsage = errors.New("usage")

// runFlags are the run flags, parsed.
type runFlags struct {
	name, sip, tlsAddr, tlsCA, tlsDir string
	tlsWait                           time.Duration
	peer, peerTransport, from         string
	trust, numbers                    listFlag
	answerAfter, optionsInterval      time.Duration
	rtpPort                           int
	toneHz                            float64
	ctlPath, logLevel                 string
}

func parseRun(args []string, stderr io.Writer) (*runFlags, error) {
	fs := flag.NewFlagSet("carrier run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &runFlags{}
	fs.StringVar(&f.name, "name", "carrier", "name for logs and status; picks the default tone")
	fs.StringVar(&f.sip, "sip", "", "SIP bind ip:port for UDP and TCP (required), e.g. 203.0.113.40:5060")
	fs.StringVar(&f.tlsAddr, "tls", "", "SIP-over-TLS listener ip:port (same ip as -sip), e.g. 203.0.113.40:5061; its certificate is issued by the lab CA of -tls-ca")
	fs.StringVar(&f.tlsCA, "tls-ca", defaultCA, "the lab CA (made by the SBC in a shared volume): trusted for TLS to the peer; its directory's CA key issues our certificate")
	fs.StringVar(&f.tlsDir, "tls-dir", "", "where our TLS certificate is kept; default <dir of -tls-ca>/carrier")
	fs.DurationVar(&f.tlsWait, "tls-wait", time.Minute, "how long to wait for the lab CA to appear")
	fs.StringVar(&f.peer, "peer", "", "trunk peer ip:port (the platform's SBC), e.g. 203.0.113.5:5061 (required)")
	fs.StringVar(&f.peerTransport, "peer-transport", "udp", "udp, tcp or tls")
	fs.Var(&f.trust, "trust", "trusted source prefix (or ip), repeatable; others get 403. Default: the peer's ip")
	fs.Var(&f.numbers, "numbers", "E.164 prefix this carrier terminates, repeatable (default +1555)")
	fs.DurationVar(&f.answerAfter, "answer-after", time.Second, "a called subscriber answers after this much ringing; 0 = by command")
	fs.DurationVar(&f.optionsInterval, "options-interval", 30*time.Second, "OPTIONS ping to the peer every ...; 0 = off")
	fs.StringVar(&f.from, "from", "+15550199", "default calling number of outbound calls")
	fs.IntVar(&f.rtpPort, "rtp-port", 0, "first local RTP port (even); 0 = any free even port")
	fs.Float64Var(&f.toneHz, "tone-hz", 0, "test tone frequency; 0 = derived from -name")
	fs.StringVar(&f.ctlPath, "ctl", climain.EnvOr("CARRIER_CTL", defaultCtl), "control socket path")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if f.sip == "" || f.peer == "" {
		return nil, fmt.Errorf("%w: -sip and -peer are required", errUsage)
	}
	if len(f.numbers) == 0 {
		f.numbers = listFlag{"+1555"}
	}
	if f.tlsDir == "" {
		f.tlsDir = filepath.Join(filepath.Dir(f.tlsCA), "carrier")
	}
	return f, nil
}

// config turns the flags into a carrier config, binding the SIP sockets.
func (f *runFlags) config(log *slog.Logger) (carrier.Config, error) {
	var trusted []netip.Prefix
	for _, s := range f.trust {
		p, err := parsePrefix(s)
		if err != nil {
			return carrier.Config{}, err
		}
		trusted = append(trusted, p)
	}
	interval := f.optionsInterval
	switch {
	case interval == 0:
		interval = -1 // off
	case interval < 0:
		return carrier.Config{}, fmt.Errorf("%w: -options-interval must not be negative", errUsage)
	}
	tlsCfg, err := f.tlsConfig(log)
	if err != nil {
		return carrier.Config{}, err
	}
	ep, err := sipnet.Listen(sipnet.Config{Listen: f.sip, TLSListen: f.tlsAddr, TLS: tlsCfg,
		UserAgent: "siplab-carrier", Logger: log})
	if err != nil {
		return carrier.Config{}, err
	}
	return carrier.Config{
		Name:            f.name,
		Endpoint:        ep,
		Peer:            f.peer,
		PeerTransport:   f.peerTransport,
		Trusted:         trusted,
		Numbers:         f.numbers,
		AnswerAfter:     f.answerAfter,
		OptionsInterval: interval,
		DefaultFrom:     f.from,
		RTPPort:         f.rtpPort,
		ToneHz:          f.toneHz,
		Logger:          log,
	}, nil
}

// tlsConfig is nil when nothing speaks TLS. With a TLS listener the
// carrier's certificate comes from the lab CA (so the SBC, which trusts
// that CA, accepts it); dialing only needs the CA.
func (f *runFlags) tlsConfig(log *slog.Logger) (*tls.Config, error) {
	switch {
	case f.tlsAddr != "":
		ap, err := netip.ParseAddrPort(f.sip)
		if err != nil {
			return nil, fmt.Errorf("%w: -sip %q: want ip:port", errUsage, f.sip)
		}
		log.Info("waiting for the lab CA", "ca", f.tlsCA, "wait", f.tlsWait)
		cfg, err := labtls.IssueServerCert(filepath.Dir(f.tlsCA), f.tlsDir, []netip.Addr{ap.Addr()}, f.tlsWait)
		if err != nil {
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		return cfg, nil
	case strings.EqualFold(f.peerTransport, sipnet.TLS):
		log.Info("waiting for the lab CA", "ca", f.tlsCA, "wait", f.tlsWait)
		cfg, err := labtls.ClientConfig(f.tlsCA, f.tlsWait)
		if err != nil {
			return nil, fmt.Errorf("tls trust: %w", err)
		}
		return cfg, nil
	}
	return nil, nil
}

// parsePrefix takes a prefix or a bare IP (= one host).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%w: -trust %q: want a prefix like 203.0.113.5/32 or an ip", errUsage, s)
}

func runDaemon(args []string, stderr io.Writer) int {
	f, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "carrier run: %v\n", strings.TrimPrefix(err.Error(), "usage: "))
		}
		return 2
	}
	log, err := climain.NewLogger(f.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "carrier run: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := f.config(log)
	if err != nil {
		fmt.Fprintf(stderr, "carrier run: %s\n", strings.TrimPrefix(err.Error(), "usage: "))
		if errors.Is(err, errUsage) || errors.Is(err, sipnet.ErrNoAddress) || errors.Is(err, sipnet.ErrTLSConfig) {
			return 2
		}
		return 1
	}
	car, err := carrier.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "carrier run: %v\n", err)
		if errors.Is(err, carrier.ErrConfig) {
			return 2
		}
		return 1
	}
	// The control socket before SIP: a second daemon with the same -ctl
	// fails before it answers anything.
	ln, err := ctl.Listen(f.ctlPath)
	if err != nil {
		car.Close()
		fmt.Fprintf(stderr, "carrier run: control socket: %v\n", err)
		return 1
	}
	wait := climain.ServeCtl(ctx, ln, car.Handler(), log)
	log.Info("carrier running", "role", carrier.Role, "sip", car.Addr(), "tls", f.tlsAddr, "peer", cfg.Peer,
		"peer_transport", cfg.PeerTransport, "numbers", strings.Join(f.numbers, " "), "ctl", f.ctlPath)
	runErr := car.Run(ctx)
	stop()
	wait()
	if runErr != nil {
		fmt.Fprintf(stderr, "carrier run: %v\n", runErr)
		return 1
	}
	return 0
}
