// Package b2buacli holds the main of the b2bua command (cmd/b2bua, and siplabd when
// invoked as b2bua): the lab's PBX (a back-to-back user agent) and its client.
//
//	b2bua -sip 10.0.0.30:5060 -proxy 10.0.0.10:5060 -location http://10.0.0.20:8080 \
//	      -domain siplab.test -dialplan /etc/siplab/dialplan [-voicemail-dir /var/lib/siplab/voicemail] \
//	      [-media-anchor on|off] [-latch on|off] [-moh on|off] [-no-answer 20s] [-ctl /run/siplab/b2bua.sock]
//	b2bua status [-json] [-ctl path]
//	b2bua set <media_anchor|latch|moh|no_answer> <value> [-ctl path]
//	b2bua reset [-json] [-ctl path]   (calls, subscriptions, voicemail, settings back to startup)
//
// The image is FROM scratch with no shell, so the client verbs are
// subcommands: docker exec siplab_pbx_1 /b2bua set media_anchor off
package b2buacli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipnet"
)

const defaultCtl = "/run/siplab/b2bua.sock"

var errUsage = errors.New("usage")

// Main runs b2bua with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "b2bua", Code: climain.UsageExits2(errUsage)}, func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	})
}

func run(ctx context.Context, args []string, out, stderr io.Writer) error {
	verbs := map[string]climain.Verb{"status": cmdStatus, "set": cmdSet, "reset": cmdReset}
	return climain.Dispatch(ctx, args, out, verbs, func(ctx context.Context, args []string) error {
		return serve(ctx, args, stderr)
	})
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("b2bua", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sipAddr := fs.String("sip", "", "SIP address ip:port (UDP and TCP) phones and the proxy reach the PBX on")
	mediaIP := fs.String("media-ip", "", "address the RTP relay binds and writes in SDP (default: the -sip address)")
	proxyAddr := fs.String("proxy", "", "outbound proxy ip:port for callee legs (the platform proxy's core address); empty: straight to each phone's registered source")
	locURL := fs.String("location", "", "location service base URL, e.g. http://10.0.0.20:8080")
	domain := fs.String("domain", "siplab.test", "SIP domain of the users")
	dialplan := fs.String("dialplan", "", "dial plan file (see b2bua/README.md)")
	vmDir := fs.String("voicemail-dir", "", "directory for voicemail WAV files; empty disables voicemail")
	anchor := fs.String("media-anchor", "on", "relay RTP through the PBX (on) or let phones send directly (off)")
	latch := fs.String("latch", "on", "send each leg's RTP to where its RTP comes from (on) or to its SDP address (off)")
	moh := fs.String("moh", "on", "music on hold to held parties: on|off")
	noAnswer := fs.String("no-answer", b2bua.DefaultNoAnswer.String(), "ring time before no-answer handling when the extension names none")
	ctlPath := fs.String("ctl", climain.EnvOr("B2BUA_CTL", defaultCtl), "control socket path")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	capFlags := capflags.Add(fs, "the core and internet (RTP relay) sides")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	log, err := climain.UsageLogger(*logLevel, stderr, errUsage)
	if err != nil {
		return err
	}
	if *sipAddr == "" || *locURL == "" || *dialplan == "" {
		return fmt.Errorf("%w: -sip, -location and -dialplan are required", errUsage)
	}
	dp, err := b2bua.LoadDialPlan(*dialplan)
	if err != nil {
		return err
	}
	settings := b2bua.DefaultSettings()
	for name, v := range map[string]string{b2bua.SettingMediaAnchor: *anchor, b2bua.SettingLatch: *latch,
		b2bua.SettingMOH: *moh, b2bua.SettingNoAnswer: *noAnswer} {
		if err := settings.Set(name, v); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	cfg := b2bua.Config{
		Domain: *domain, Location: &location.HTTPClient{BaseURL: *locURL}, Proxy: *proxyAddr,
		DialPlan: dp, VoicemailDir: *vmDir, Settings: &settings, Logger: log,
	}
	if *mediaIP != "" {
		if cfg.MediaIP, err = netip.ParseAddr(*mediaIP); err != nil {
			return fmt.Errorf("%w: -media-ip: %w", errUsage, err)
		}
	}
	ln, err := ctl.Listen(*ctlPath)
	if err != nil {
		return err
	}
	ep, err := sipnet.Listen(sipnet.Config{Listen: *sipAddr, UserAgent: "siplab-b2bua", Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	pbx, err := b2bua.New(cfg, ep)
	if err != nil {
		ln.Close()
		return err
	}
	return climain.ServeCalls(ctx, pbx, ln, func(ctx context.Context) (func(), error) {
		// The core side (SIP from and to the proxy: pbx/core) and, when the
		// RTP relay has its own address on the internet, that side too
		// (pbx/internet).
		stop, err := capFlags.StartAt(ctx, log, capflags.At{Name: "core", Listen: *sipAddr}, capflags.At{Name: "internet", Listen: *mediaIP})
		if errors.Is(err, capflags.ErrUsage) {
			err = fmt.Errorf("%w: %w", errUsage, err)
		}
		return stop, err
	}, log)
}

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, _, err := climain.ClientFlags("b2bua status", "B2BUA_CTL", defaultCtl, args, out)
	if err != nil {
		return err
	}
	return climain.Show(ctx, sock, http.MethodGet, "/status", nil, asJSON, out, b2bua.WriteText)
}

func cmdSet(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("b2bua set", flag.ContinueOnError)
	sock := fs.String("ctl", climain.EnvOr("B2BUA_CTL", defaultCtl), "the daemon's control socket")
	// Flags may follow the arguments: "set media_anchor off -ctl x".
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: b2bua set <%s> <value> [-ctl path]", errUsage, strings.Join(b2bua.SettingNames(), "|"))
	}
	var s b2bua.Settings
	if err := (ctl.Client{Socket: *sock}).Post(ctx, "/set", b2bua.SetRequest{Name: pos[0], Value: pos[1]}, &s); err != nil {
		return err
	}
	v, _ := s.Get(pos[0])
	fmt.Fprintf(out, "%s = %s\n", pos[0], v)
	return nil
}

func cmdReset(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, pos, err := climain.ClientFlags("b2bua reset", "B2BUA_CTL", defaultCtl, args, out)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: b2bua reset [-json] [-ctl path]", errUsage)
	}
	return climain.Show(ctx, sock, http.MethodPost, "/reset", nil, asJSON, out, func(out io.Writer, res b2bua.ResetResult) {
		fmt.Fprintf(out, "%d call(s) ended, %d subscription(s) ended, %d voicemail(s) deleted, restored [%s]\n",
			res.CallsEnded, res.SubscriptionsEnded, res.VoicemailsDeleted, strings.Join(res.Restored, " "))
	})
}
