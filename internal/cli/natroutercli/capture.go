package natroutercli

// Capture of both router sides into pcapng and optional HEP export. Kept in
// its own file so the router's flags and NAT code stay untouched: run.go
// only registers these flags and calls start.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/siplab/siplab/capture"
	"github.com/siplab/siplab/hep"
	"github.com/siplab/siplab/natrouter"
)

type captureFlags struct {
	dir      *string
	node     *string
	maxBytes *int64
	files    *int
	filter   *string
	hep      *string
	hepID    *uint
}

func addCaptureFlags(fs *flag.FlagSet) *captureFlags {
	return &captureFlags{
		dir:      fs.String("capture-dir", "", "write <node>.pcapng with both router sides into this folder (off when empty)"),
		node:     fs.String("capture-node", "", "capture point name: file name and interface prefix, e.g. router-a (default: hostname)"),
		maxBytes: fs.Int64("capture-max-bytes", capture.DefaultMaxBytes, "rotate the capture file at this size"),
		files:    fs.Int("capture-files", capture.DefaultMaxFiles, "capture files kept per router, the current one included"),
		filter:   fs.String("capture-filter", "all", "what to record: all (UDP, TCP, ICMP) or sip-rtp (SIP ports 5060/5061, UDP 10000-20000, ICMP)"),
		hep:      fs.String("hep", "", "send SIP as HEPv3 to this collector ip:port, e.g. 203.0.113.99:9060 (off when empty)"),
		hepID:    fs.Uint("hep-id", 0, "HEP capture agent ID (default: derived from the capture node name)"),
	}
}

// start begins capturing the router's LAN and WAN when -capture-dir or -hep
// is set. The returned stop waits for the file to be flushed and closed.
func (f *captureFlags) start(ctx context.Context, lan, wan natrouter.Interface, log *slog.Logger) (stop func(), err error) {
	nop := func() {}
	if *f.dir == "" && *f.hep == "" {
		return nop, nil
	}
	// Zero means "default" in capture.Config; on the command line it is a
	// mistake, so say so instead of silently using the default.
	if *f.maxBytes <= 0 {
		return nop, fmt.Errorf("%w: -capture-max-bytes %d: want a positive size in bytes", errUsage, *f.maxBytes)
	}
	if *f.files <= 0 {
		return nop, fmt.Errorf("%w: -capture-files %d: want at least 1", errUsage, *f.files)
	}
	filter, err := capture.ParseFilter(*f.filter)
	if err != nil {
		return nop, fmt.Errorf("%w: -capture-filter: %w", errUsage, err)
	}
	node := *f.node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return nop, fmt.Errorf("capture: no -capture-node and no hostname: %w", err)
		}
	}
	if *f.hepID > 1<<32-1 {
		return nop, fmt.Errorf("%w: -hep-id %d does not fit 32 bits", errUsage, *f.hepID)
	}
	cfg := capture.Config{
		Node: node,
		Interfaces: []capture.Iface{
			// The router's own addresses (host bits set): exactly its sides.
			{Name: "lan", Match: lan.Address},
			{Name: "wan", Match: wan.Address},
		},
		Dir:      *f.dir,
		MaxBytes: *f.maxBytes,
		MaxFiles: *f.files,
		Filter:   filter,
		Logger:   log,
	}
	var client *hep.Client
	if *f.hep != "" {
		id := uint32(*f.hepID)
		if id == 0 {
			h := fnv.New32a()
			h.Write([]byte(node))
			id = h.Sum32()
		}
		if client, err = hep.New(hep.Config{Collector: *f.hep, CaptureID: id, Logger: log}); err != nil {
			if errors.Is(err, hep.ErrBadConfig) {
				return nop, fmt.Errorf("%w: -hep: %w", errUsage, err)
			}
			return nop, err
		}
		cfg.OnPacket = func(p capture.Packet) {
			if p.Kind != capture.KindSIP {
				return // HOMER takes RTCP as JSON reports, not raw packets
			}
			proto := uint8(17)
			if p.Transport == "tcp" {
				proto = 6
			}
			// Errors are counted and logged, rate-limited, by the client.
			_ = client.Send(hep.Packet{Src: p.Src, Dst: p.Dst, IPProto: proto, Time: p.Time, Type: hep.TypeSIP, Payload: p.Payload})
		}
		// HEP leaves through the WAN: keep it out of the capture file.
		if ap, err := netip.ParseAddrPort(*f.hep); err == nil {
			cfg.Ignore = []netip.AddrPort{ap}
		}
		log.Info("HEP export on", "collector", *f.hep, "capture_id", id)
	}
	c, err := capture.New(ctx, cfg)
	if err != nil {
		if client != nil {
			client.Close()
		}
		if errors.Is(err, capture.ErrBadConfig) {
			return nop, fmt.Errorf("%w: %w", errUsage, err)
		}
		return nop, err
	}
	if file := c.File(); file != "" {
		log.Info("capture file", "file", file, "max_bytes", *f.maxBytes, "files", *f.files, "filter", filter)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A capture that stops (interfaces gone, disk full) is logged; the
		// router keeps routing.
		if err := c.Run(ctx); err != nil {
			log.Error("capture stopped", "err", err)
		}
		if client != nil {
			sent, failed := client.Stats()
			log.Info("HEP export stopped", "sent", sent, "failed", failed)
			client.Close()
		}
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			log.Warn("capture did not stop within 5s")
		}
	}, nil
}
