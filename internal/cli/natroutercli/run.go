package natroutercli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/natrouter"
)

func cmdRun(ctx context.Context, args []string) error {
	fs := newFlags("run")
	lan := fs.String("lan", "", "LAN selector: subnet (192.168.1.0/24) or own address with length (192.168.1.1/24)")
	wan := fs.String("wan", "", "WAN selector: subnet (203.0.113.0/24) or own address with length (203.0.113.2/24)")
	preset := fs.String("preset", natrouter.DefaultPreset, "NAT preset: "+strings.Join(natrouter.PresetNames(), ", "))
	pinhole := fs.Duration("pinhole", natrouter.DefaultPinhole, "UDP pinhole timeout (whole seconds)")
	alg := fs.String("alg", natrouter.DefaultALG, "SIP ALG mode: "+strings.Join(natrouter.ALGNames(), ", ")+" (broken:<fault>+<fault>; natrouter alg lists them)")
	socket := fs.String("socket", natrouter.DefaultSocket, "control socket path")
	table := fs.String("table", natrouter.DefaultTable, "nftables table name")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	gateway := fs.String("gateway", "", "first replace the default route with this gateway (needs NET_ADMIN): "+
		"a router on a bridge where the host has an address must not route its own packets through the host")
	capFlags := addCaptureFlags(fs) // capture.go: -capture-*, -hep
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: run takes no arguments, got %q", errUsage, fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: -log-level: %w", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *gateway != "" {
		gw, err := netip.ParseAddr(*gateway)
		if err != nil {
			return fmt.Errorf("%w: -gateway %q: %w", errUsage, *gateway, err)
		}
		if err := natrouter.SetDefaultGateway(gw); err != nil {
			return err
		}
		log.Info("default route replaced", "via", gw)
	}

	cfg := natrouter.Config{Preset: *preset, Pinhole: *pinhole, ALG: *alg, Table: *table, Logger: log}
	var err error
	if cfg.LAN, err = parseSelector("-lan", *lan); err != nil {
		return err
	}
	if cfg.WAN, err = parseSelector("-wan", *wan); err != nil {
		return err
	}

	r, err := natrouter.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := r.Close(); err != nil {
			log.Error("close", "err", err)
		}
	}()
	stopCapture, err := capFlags.start(ctx, r.LAN(), r.WAN(), log) // capture.go
	if err != nil {
		return err
	}
	defer stopCapture()
	if err := r.Start(ctx); err != nil {
		return err
	}
	// The control socket only appears once NAT is installed, so "status"
	// answering doubles as the readiness check (compose healthcheck).
	ln, err := ctl.Listen(*socket)
	if err != nil {
		return err
	}
	log.Info("control socket ready", "socket", *socket)
	return ctl.ServeListener(ctx, ln, natrouter.ControlHandler(r))
}

func parseSelector(name, v string) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, fmt.Errorf("%w: %s is required (e.g. 192.168.1.1/24)", errUsage, name)
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %s %q: want an IPv4 prefix like 192.168.1.0/24: %w", errUsage, name, v, err)
	}
	return p, nil
}
