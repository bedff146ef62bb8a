package uaclientcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/uaclient"
)

const defaultCtl = "/run/siplab/uaclient.sock"

// onOff is a flag that reads on/off (and true/false), so "-dtmf off" works
// like the settings do.
type onOff struct{ v bool }

func (o *onOff) String() string {
	if o == nil {
		return "on"
	}
	return live.OnOffWord(o.v)
}

func (o *onOff) Set(s string) error {
	v, err := live.OnOff(s)
	if err != nil {
		return err
	}
	o.v = v
	return nil
}

// settingsFlag collects repeated -set name=value.
type settingsFlag map[string]string

func (s settingsFlag) String() string { return "" }

func (s settingsFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	s[strings.TrimSpace(name)] = strings.TrimSpace(value)
	return nil
}

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("uaclient run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	var (
		name       = fs.String("name", host, "phone name for logs and status; picks the default tone")
		user       = fs.String("user", "", "SIP user (AOR user part and digest username); default -name")
		password   = fs.String("password", "", "digest password")
		domain     = fs.String("domain", "", "SIP domain (AOR host); default the proxy host")
		proxy      = fs.String("proxy", "", "SIP server / outbound proxy ip:port: every request goes there")
		transport  = fs.String("transport", "udp", "udp or tcp")
		sipAddr    = fs.String("sip", ":5060", "local SIP bind ip:port; no ip = the interface towards the proxy")
		rtpPort    = fs.Int("rtp-port", 0, "local RTP port (even); 0 = any free even port")
		codecs     = fs.String("codecs", "pcmu,pcma", "audio codecs in preference order")
		dtmf       = &onOff{v: true}
		toneHz     = fs.Float64("tone-hz", 0, "test tone frequency; 0 = derived from -name")
		autoAnswer = fs.Duration("auto-answer", 0, "answer incoming calls after this delay; 0 = answer by command")
		expires    = fs.Int("expires", 3600, "registration lifetime asked for, seconds (refreshed at about half)")
		register   = &onOff{v: true}
		ctlPath    = fs.String("ctl", climain.EnvOr("UACLIENT_CTL", defaultCtl), "control socket path (one per phone)")
		gateway    = fs.String("gateway", "", "replace the default route with this next hop at start (needs NET_ADMIN)")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
		stunServer = fs.String("stun", "", "STUN/TURN server ip:port for sdp_addr=stun and media_relay=turn (live setting stun_server); none by default")
		sets       = settingsFlag{}
	)
	fs.Var(dtmf, "dtmf", "offer RFC 4733 telephone-event: on or off")
	fs.Var(register, "register", "register at start and keep the registration fresh: on or off")
	capFlags := capflags.Add(fs, "the phone's LAN side")
	fs.Var(sets, "set", "initial live setting name=value, repeatable (see: uaclient get): "+strings.Join(uaclient.SettingNames(), ", "))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "uaclient run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log, err := climain.NewLogger(*logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "uaclient run: %v\n", err)
		return 2
	}
	cl, err := sdpneg.ParseCodecList(*codecs)
	if err != nil {
		fmt.Fprintf(stderr, "uaclient run: -codecs: %v\n", err)
		return 2
	}
	if *autoAnswer < 0 {
		fmt.Fprintln(stderr, "uaclient run: -auto-answer must not be negative")
		return 2
	}
	if *autoAnswer > 0 {
		sets["auto_answer"] = autoAnswer.String()
	}
	if _, set := sets["stun_server"]; *stunServer != "" && !set {
		sets["stun_server"] = *stunServer
	}
	cfg := uaclient.Config{
		Name:         *name,
		User:         *user,
		Password:     *password,
		Domain:       *domain,
		Proxy:        *proxy,
		Transport:    *transport,
		Listen:       *sipAddr,
		RTPPort:      *rtpPort,
		Codecs:       cl,
		NoDTMF:       !dtmf.v,
		ToneHz:       *toneHz,
		Expires:      *expires,
		AutoRegister: register.v && *proxy != "",
		Settings:     sets,
		Logger:       log,
	}
	if *gateway != "" {
		gw, err := netip.ParseAddr(*gateway)
		if err != nil {
			fmt.Fprintf(stderr, "uaclient run: -gateway %q is not an IP address\n", *gateway)
			return 2
		}
		if err := uaclient.SetDefaultGateway(gw); err != nil {
			fmt.Fprintf(stderr, "uaclient run: %v\n", err)
			return 1
		}
		log.Info("default route replaced", "via", gw)
	}
	phone, err := uaclient.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "uaclient run: %v\n", err)
		if errors.Is(err, uaclient.ErrConfig) {
			return 2
		}
		return 1
	}
	// Bind the control socket before serving SIP: a second daemon started
	// with the same -ctl must fail before it answers any call.
	ln, err := ctl.Listen(*ctlPath)
	if err != nil {
		phone.Close()
		fmt.Fprintf(stderr, "uaclient run: control socket: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Capture before the phone registers, so its first REGISTER is recorded.
	// The side is the phone's bound SIP address (after uaclient.New, so
	// "-sip :5060" has been resolved to the interface towards the proxy).
	stopCapture, err := capFlags.StartAt(ctx, log, capflags.At{Name: "lan", Listen: phone.Addr().Addr().String()})
	if err != nil {
		ln.Close()
		phone.Close()
		fmt.Fprintf(stderr, "uaclient run: %v\n", err)
		if errors.Is(err, capflags.ErrUsage) {
			return 2
		}
		return 1
	}
	defer stopCapture()
	wait := climain.ServeCtl(ctx, ln, phone.Handler(), log)
	log.Info("phone running", "name", phone.Name(), "sip", phone.Addr(), "transport", cfg.Transport,
		"proxy", cfg.Proxy, "ctl", *ctlPath, "tone_hz", phone.ToneHz())
	runErr := phone.Run(ctx)
	stop()
	wait()
	if runErr != nil {
		fmt.Fprintf(stderr, "uaclient run: %v\n", runErr)
		return 1
	}
	return 0
}
