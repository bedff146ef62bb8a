package capflags

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/hep"
)

// stopWait bounds how long stop waits for the file to be flushed and
// closed: a daemon's shutdown must not hang on its capture.
const stopWait = 5 * time.Second

// Start begins capturing sides when -capture-dir or -hep is set (else it
// does nothing). Call it before the daemon serves SIP, so the first
// REGISTER is recorded. The returned stop cancels the capture and waits
// for the file to be flushed and closed. A capture that stops on its own
// (interfaces gone, disk full) is logged; the daemon keeps running, since
// losing the recording must not take the lab's service down with it.
func (f *Flags) Start(ctx context.Context, sides []capture.Iface, log *slog.Logger) (stop func(), err error) {
	nop := func() {}
	if !f.Enabled() {
		return nop, nil
	}
	if log == nil {
		log = slog.Default()
	}
	cfg, client, err := f.config(sides, log)
	if err != nil {
		return nop, err
	}
	c, err := capture.New(ctx, cfg)
	if err != nil {
		if client != nil {
			client.Close()
		}
		if errors.Is(err, capture.ErrBadConfig) {
			return nop, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		return nop, fmt.Errorf("capture %s: %w", cfg.Node, err)
	}
	if file := c.File(); file != "" {
		log.Info("capture file", "file", file, "max_bytes", cfg.MaxBytes, "files", cfg.MaxFiles, "filter", cfg.Filter)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			log.Error("capture stopped", "node", cfg.Node, "err", err)
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
		case <-time.After(stopWait):
			log.Warn("capture did not stop in time", "wait", stopWait)
		}
	}, nil
}

// config validates the flags (once, here) and builds the capture config,
// with a HEP client when -hep is set.
func (f *Flags) config(sides []capture.Iface, log *slog.Logger) (capture.Config, *hep.Client, error) {
	// Zero means "default" in capture.Config; on the command line it is a
	// mistake, so say so instead of silently using the default.
	if *f.maxBytes <= 0 {
		return capture.Config{}, nil, fmt.Errorf("%w: -capture-max-bytes %d: want a positive size in bytes", ErrUsage, *f.maxBytes)
	}
	if *f.files <= 0 {
		return capture.Config{}, nil, fmt.Errorf("%w: -capture-files %d: want at least 1", ErrUsage, *f.files)
	}
	filter, err := capture.ParseFilter(*f.filter)
	if err != nil {
		return capture.Config{}, nil, fmt.Errorf("%w: -capture-filter: %w", ErrUsage, err)
	}
	if *f.hepID > 1<<32-1 {
		return capture.Config{}, nil, fmt.Errorf("%w: -hep-id %d does not fit 32 bits", ErrUsage, *f.hepID)
	}
	if len(sides) == 0 {
		return capture.Config{}, nil, fmt.Errorf("%w: this daemon has no address to capture on", ErrUsage)
	}
	node := *f.node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return capture.Config{}, nil, fmt.Errorf("capture: no -capture-node and no hostname: %w", err)
		}
	}
	cfg := capture.Config{
		Node:       node,
		Interfaces: sides,
		Dir:        *f.dir,
		MaxBytes:   *f.maxBytes,
		MaxFiles:   *f.files,
		Filter:     filter,
		Logger:     log,
	}
	if *f.hep == "" {
		return cfg, nil, nil
	}
	id := uint32(*f.hepID)
	if id == 0 {
		// A stable per-node ID, so HOMER tells the capture points apart
		// without anyone numbering them.
		h := fnv.New32a()
		h.Write([]byte(node))
		id = h.Sum32()
	}
	client, err := hep.New(hep.Config{Collector: *f.hep, CaptureID: id, Logger: log})
	if err != nil {
		if errors.Is(err, hep.ErrBadConfig) {
			return capture.Config{}, nil, fmt.Errorf("%w: -hep: %w", ErrUsage, err)
		}
		return capture.Config{}, nil, fmt.Errorf("hep: %w", err)
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
	// HEP leaves through one of the captured sides: keep it out of the file.
	if ap, err := netip.ParseAddrPort(*f.hep); err == nil {
		cfg.Ignore = []netip.AddrPort{ap}
	}
	log.Info("HEP export on", "collector", *f.hep, "capture_id", id)
	return cfg, client, nil
}
