package natrouter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/siplab/siplab/natrouter/sipalg"
)

// The broken ALG: outbound SIP goes through an NFQUEUE to our Go mangler
// (natrouter/sipalg) and comes back rewritten the way a consumer router
// does, with the selected faults.
//
// This kernel has no nft "queue" statement (CONFIG_NFT_QUEUE unset), so the
// rule uses the xtables NFQUEUE target through nft_compat. The queue sits
// in postrouting after source NAT (srcnat is 100) because the ALG writes
// the mapped port, which only exists once masquerade has run.
const (
	chainALGQueue = "alg_queue"
	// algQueueNum is the NFQUEUE number. Queues are per network namespace,
	// so every router (one per container or test namespace) can use it.
	algQueueNum = 5060

	// xt_NFQUEUE v3 flags (linux/netfilter/xt_NFQUEUE.h).
	nfqueueFlagBypass = 0x01
)

// DefaultBrokenFaults is what "broken" without a fault list selects: the
// naive search-and-replace of the lab notes, which rewrites the Call-ID too
// and forgets Content-Length.
const DefaultBrokenFaults = "rewrite-call-id+stale-content-length"

func init() {
	registerALG(ALGMode{
		Name: "broken",
		Summary: "a consumer-router ALG in Go (NFQUEUE): rewrites LAN addresses to the WAN address with the chosen faults; " +
			"broken = broken:" + DefaultBrokenFaults + ", broken:none rewrites correctly",
		program:       programBrokenALG,
		queue:         true,
		takesFaults:   true,
		defaultFaults: DefaultBrokenFaults,
	})
}

// nfqueueTarget is the xt NFQUEUE target, revision 3: queue number, number
// of queues (1: no fan-out) and flags. Bypass makes the kernel accept
// packets when no program listens on the queue, so a dead mangler degrades
// to "no ALG" instead of a site that cannot make calls.
func nfqueueTarget(num uint16) *expr.Target {
	info := make([]byte, 8) // struct xt_NFQ_info_v3 is 6 bytes, XT_ALIGNed to 8
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], nfqueueFlagBypass)
	x := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &x}
}

func programBrokenALG(rs *ruleset, p params) {
	rs.addChainAfterMasquerade(chainALGQueue)
	rs.addRule(chainALGQueue, "broken SIP ALG: outbound SIP to the Go mangler (NFQUEUE, bypass when nobody listens)",
		iifname(p.lanIf), oifname(p.wanIf), l4proto(unix.IPPROTO_UDP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{sipPort >> 8, sipPort & 0xff}},
		nfqueueTarget(algQueueNum),
	)
}

// mangleConfig is what the queue consumer needs, swapped atomically on a
// live change.
type mangleConfig struct {
	params sipalg.Params
	faults sipalg.Set
	mtu    int
}

// ALGQueueStats counts what the broken ALG did.
type ALGQueueStats struct {
	Seen     uint64 `json:"seen"`
	Modified uint64 `json:"modified"`
	Dropped  uint64 `json:"dropped"`
	Passed   uint64 `json:"passed"`
	Errors   uint64 `json:"errors"`
}

// algQueue is the running NFQUEUE consumer.
type algQueue struct {
	log    *slog.Logger
	nf     *nfqueue.Nfqueue
	cancel context.CancelFunc
	cfg    atomic.Pointer[mangleConfig]

	seen, modified, dropped, passed, errs atomic.Uint64
	closeOnce                             sync.Once
}

// startALGQueue binds the queue in ns (None: the caller's namespace) and
// starts serving it. The consumer lives until close, not until a request's
// context ends, so it gets its own.
func startALGQueue(ns netns.NsHandle, cfg mangleConfig, log *slog.Logger) (*algQueue, error) {
	c := nfqueue.Config{
		NfQueue:      algQueueNum,
		MaxPacketLen: 0xffff,
		MaxQueueLen:  1024,
		Copymode:     nfqueue.NfQnlCopyPacket,
		AfFamily:     unix.AF_INET,
		// Fail open: when the queue is full the kernel accepts instead of
		// dropping. With the rule's bypass flag, no state of the consumer
		// can blackhole the site's signalling for good.
		Flags: nfqueue.NfQaCfgFlagFailOpen,
	}
	if ns.IsOpen() {
		c.NetNS = int(ns)
	}
	nf, err := nfqueue.Open(&c)
	if err != nil {
		return nil, fmt.Errorf("%w: open queue %d: %w", ErrALGQueue, algQueueNum, err)
	}
	// ENOBUFS under a burst must not stop the consumer.
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		log.Debug("NoENOBUFS not set", "err", err)
	}
	q := &algQueue{log: log, nf: nf}
	q.cfg.Store(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	if err := nf.RegisterWithErrorFunc(ctx, q.handle, func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var opErr *netlink.OpError
		if errors.As(err, &opErr) && (opErr.Timeout() || errors.Is(opErr.Err, unix.ENOBUFS)) {
			return 0
		}
		if errors.Is(err, net.ErrClosed) {
			return 1
		}
		q.errs.Add(1)
		log.Warn("ALG queue receive error", "err", err)
		return 0
	}); err != nil {
		cancel()
		_ = nf.Close()
		return nil, fmt.Errorf("%w: bind queue %d: %w", ErrALGQueue, algQueueNum, err)
	}
	log.Info("ALG queue bound", "queue", algQueueNum, "faults", cfg.faults.String())
	return q, nil
}

func (q *algQueue) setConfig(cfg mangleConfig) { q.cfg.Store(&cfg) }

func (q *algQueue) config() mangleConfig { return *q.cfg.Load() }

// handle decides one packet. Whatever goes wrong, the packet is accepted
// unchanged: an ALG that does not understand a packet lets it by.
func (q *algQueue) handle(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	q.seen.Add(1)
	if a.Payload == nil {
		q.verdict(id, nfqueue.NfAccept, nil)
		return 0
	}
	cfg := q.cfg.Load()
	res, err := sipalg.Packet(*a.Payload, cfg.params, cfg.mtu, cfg.faults)
	if err != nil {
		q.log.Debug("ALG passes a packet it cannot parse", "err", err)
		q.passed.Add(1)
		q.verdict(id, nfqueue.NfAccept, nil)
		return 0
	}
	callID := sipHeader(res.Msg, "call-id", "i")
	switch res.Verdict {
	case sipalg.Drop:
		q.dropped.Add(1)
		q.log.Info("ALG dropped a SIP message", "call_id", callID, "why", res.Drop)
		q.verdict(id, nfqueue.NfDrop, nil)
	case sipalg.Modify:
		q.modified.Add(1)
		var fields []string
		for _, e := range res.Edits {
			fields = append(fields, string(e.Field))
		}
		q.log.Info("ALG rewrote a SIP message", "call_id", callID, "first_line", firstLine(res.Msg),
			"rewrote", strings.Join(fields, ","), "content_length", res.ContentLength, "faults", strings.Join(res.Faults, "+"))
		q.verdict(id, nfqueue.NfAccept, res.Packet)
	default:
		q.passed.Add(1)
		q.verdict(id, nfqueue.NfAccept, nil)
	}
	return 0
}

func (q *algQueue) verdict(id uint32, v int, pkt []byte) {
	var err error
	if pkt != nil {
		err = q.nf.SetVerdictModPacket(id, v, pkt)
	} else {
		err = q.nf.SetVerdict(id, v)
	}
	if err != nil {
		// The kernel keeps the packet until the queue is unbound; with the
		// bypass flag it is then accepted.
		q.errs.Add(1)
		q.log.Warn("ALG verdict failed", "err", err)
	}
}

func (q *algQueue) stats() ALGQueueStats {
	return ALGQueueStats{Seen: q.seen.Load(), Modified: q.modified.Load(), Dropped: q.dropped.Load(),
		Passed: q.passed.Load(), Errors: q.errs.Load()}
}

func (q *algQueue) close() {
	q.closeOnce.Do(func() {
		q.cancel()
		_ = q.nf.Close()
		q.log.Info("ALG queue unbound", "queue", algQueueNum)
	})
}

func firstLine(msg []byte) string {
	s := string(msg)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// sipHeader returns the first value of a header (long or compact name).
func sipHeader(msg []byte, names ...string) string {
	head, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, line := range strings.Split(head, "\n") {
		n, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n = strings.ToLower(strings.TrimSpace(n))
		for _, want := range names {
			if n == want {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}
