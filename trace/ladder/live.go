package ladder

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"iter"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// Live builds the calls of a growing capture folder, fed by a
// capture.Tail: the same calls Build draws from the whole folder, but a
// call is assembled again only when its messages changed, and its RTP
// streams counted again only when packets arrived on its ports within its
// time span, from an index of the RTP by port rather than a scan of every
// packet. Grouping the SIP into calls is redone when SIP arrives (SIP is a
// few packets beside the RTP; a new message can join two legs).
// Not safe for concurrent use; the calls it returns are not changed
// afterwards.
type Live struct {
	topo *Topology

	sip     []liveSIP
	sipDirt bool
	rtp     rtpIndex
	// fresh is the span of the RTP added since the last Calls, by port.
	fresh map[uint16]span
	built map[uint64]*builtCall
	calls []*Call
	stun  liveSTUN // a browser call's STUN (live_stun.go)
}

type liveSIP struct {
	file capture.FileID
	p    capture.Packet
}

type span struct{ from, to int64 } // Unix nanoseconds

// builtCall is a call as Calls last made it, by its messages' signature.
type builtCall struct {
	call     *Call
	ports    map[uint16]bool
	from, to time.Time
	// stunFrom and stunTo are the span of the call's STUN (stunWindow).
	stunFrom, stunTo time.Time
}

// NewLive starts an empty Live for the lab plan topo (nil: bare
// addresses, as Build).
func NewLive(topo *Topology) *Live {
	if topo == nil {
		topo = &Topology{}
	}
	l := &Live{topo: topo}
	l.clear()
	return l
}

func (l *Live) clear() {
	l.sip, l.sipDirt, l.fresh, l.built, l.calls = nil, true, map[uint16]span{}, map[uint64]*builtCall{}, nil
	l.rtp = newRTPIndex()
	l.stun = liveSTUN{}
}

// Apply takes what a Tail read.
func (l *Live) Apply(b *capture.Batch) {
	if b.Reset {
		l.clear()
	}
	if len(b.Gone) > 0 {
		gone := map[capture.FileID]bool{}
		for _, id := range b.Gone {
			gone[id] = true
		}
		sip := l.sip[:0]
		for _, s := range l.sip {
			if !gone[s.file] {
				sip = append(sip, s)
			}
		}
		clear(l.sip[len(sip):])
		if len(sip) != len(l.sip) {
			l.sipDirt = true
		}
		l.sip = sip
		// The calls that had packets of the files gone count their RTP
		// again, as for packets that arrived.
		l.rtp.drop(gone, l.touch)
		l.stun.drop(gone)
	}
	for _, f := range b.Files {
		for _, p := range f.SIP {
			l.sip = append(l.sip, liveSIP{f.File, p})
			l.sipDirt = true
		}
		for k := range f.RTP {
			if p := &f.RTP[k]; p.Kind == capture.KindRTP && p.RTP != nil {
				l.touch(p.Time.UnixNano(), p.Src.Port(), p.Dst.Port())
			}
		}
		l.rtp.add(f.File, f.RTP)
		l.stun.add(f.File, f.RTP)
	}
}

// touch notes that the RTP of ports changed at ns.
func (l *Live) touch(ns int64, ports ...uint16) {
	for _, port := range ports {
		s, ok := l.fresh[port]
		if !ok || ns < s.from {
			s.from = ns
		}
		if !ok || ns > s.to {
			s.to = ns
		}
		l.fresh[port] = s
	}
}

// Calls returns the calls, in order of their first message, the INVITE
// calls numbered 1, 2, … as Build numbers them; rebuilt is how many were
// assembled or counted again.
func (l *Live) Calls() (calls []*Call, rebuilt int) {
	if !l.sipDirt && len(l.fresh) == 0 && !l.stun.any && l.calls != nil {
		return l.copies(), 0
	}
	if l.sipDirt {
		sort.SliceStable(l.sip, func(i, j int) bool { return l.sip[i].p.Time.Before(l.sip[j].p.Time) })
	}
	sip := make([]capture.Packet, len(l.sip))
	for i, s := range l.sip {
		sip[i] = s.p
	}
	next := map[uint64]*builtCall{}
	l.calls = l.calls[:0]
	for _, legMsgs := range group(sip, l.topo) {
		sig := signature(legMsgs)
		b := l.built[sig]
		if b == nil || l.freshIn(b) || l.stun.freshIn(b.stunFrom, b.stunTo) {
			c := &Call{Topo: l.topo}
			c.assemble(legMsgs, l.topo)
			lead, _, sto := c.stunWindow()
			l.stun.sort()
			c.attachSTUN(l.stun.window(lead, sto), l.topo)
			ports, from, to := c.rtpWindow()
			c.attachRTP(l.rtp.window(ports, from, to), l.topo)
			b = &builtCall{call: c, ports: ports, from: from, to: to, stunFrom: lead, stunTo: sto}
			rebuilt++
		}
		next[sig] = b
		l.calls = append(l.calls, b.call)
	}
	l.built, l.sipDirt = next, false
	clear(l.fresh)
	l.stun.any = false
	return l.copies(), rebuilt
}

// copies are the calls for a caller: numbered in their own copy, so a
// call shared by two rounds is never written while a reader has it.
func (l *Live) copies() []*Call {
	out := make([]*Call, len(l.calls))
	for i, c := range l.calls {
		cp := *c
		out[i] = &cp
	}
	order(out)
	return out
}

// freshIn reports whether RTP arrived on a built call's ports within its
// time span since it was built.
func (l *Live) freshIn(b *builtCall) bool {
	for port := range b.ports {
		if s, ok := l.fresh[port]; ok && s.to >= b.from.UnixNano() && s.from <= b.to.UnixNano() {
			return true
		}
	}
	return false
}

// signature identifies a call's messages as assemble sees them: two
// groups with one signature draw the same.
func signature(legMsgs [][]Message) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	for _, lm := range legMsgs {
		h.Write([]byte{0xff})
		for _, m := range lm {
			binary.LittleEndian.PutUint64(buf[:], uint64(m.Time.UnixNano()))
			h.Write(buf[:])
			h.Write([]byte(m.Iface))
			h.Write(m.Payload)
			h.Write([]byte(m.NAT + "\x00" + m.ALG + "\x00" + m.Sender.Name() + "\x00" + m.Receiver.Name()))
			for _, s := range m.Seen {
				h.Write([]byte(s + "\x00"))
			}
		}
	}
	return h.Sum64()
}

// rtpIndex holds RTP packets and, for each UDP port, the packets from or
// to it in time order. A packet is kept as a small record without
// pointers: a minute of 20 calls is a million packets, which the garbage
// collector then never scans.
type rtpIndex struct {
	pkts   []rtpRec
	files  []capture.FileID
	ifaces []string
	ifaceN map[string]uint16
	byPort map[uint16][]int32
}

// rtpRec is what attachRTP reads of an RTP packet.
type rtpRec struct {
	ns           int64 // capture time, Unix nanoseconds
	src, dst     [16]byte
	sport, dport uint16
	ssrc         uint32
	seq          uint16
	iface        uint16
	pt           uint8
	src4, dst4   bool
}

func newRTPIndex() rtpIndex {
	return rtpIndex{byPort: map[uint16][]int32{}, ifaceN: map[string]uint16{}}
}

func (x *rtpIndex) record(p *capture.Packet) rtpRec {
	n, ok := x.ifaceN[p.Iface]
	if !ok {
		n = uint16(len(x.ifaces))
		x.ifaces = append(x.ifaces, p.Iface)
		x.ifaceN[p.Iface] = n
	}
	return rtpRec{ns: p.Time.UnixNano(), src: p.Src.Addr().As16(), dst: p.Dst.Addr().As16(),
		sport: p.Src.Port(), dport: p.Dst.Port(), ssrc: p.RTP.SSRC, seq: p.RTP.Seq, iface: n,
		pt: p.RTP.PayloadType, src4: p.Src.Addr().Is4(), dst4: p.Dst.Addr().Is4()}
}

func addrPort(a [16]byte, is4 bool, port uint16) netip.AddrPort {
	if is4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[12:])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port)
}

// packet fills p (and its RTP header) from record i.
func (x *rtpIndex) packet(i int32, p *capture.Packet) {
	r := &x.pkts[i]
	p.Time = time.Unix(0, r.ns).UTC()
	p.Iface = x.ifaces[r.iface]
	p.Kind, p.Transport = capture.KindRTP, "udp"
	p.Src, p.Dst = addrPort(r.src, r.src4, r.sport), addrPort(r.dst, r.dst4, r.dport)
	*p.RTP = capture.RTPHeader{PayloadType: r.pt, Seq: r.seq, SSRC: r.ssrc}
}

// add takes one file's new RTP packets (in the file's time order).
func (x *rtpIndex) add(file capture.FileID, ps []capture.Packet) {
	tails := map[uint16]int{} // where each port's new entries begin
	note := func(port uint16, i int32) {
		if _, ok := tails[port]; !ok {
			tails[port] = len(x.byPort[port])
		}
		x.byPort[port] = append(x.byPort[port], i)
	}
	x.pkts, x.files = slices.Grow(x.pkts, len(ps)), slices.Grow(x.files, len(ps))
	for k := range ps {
		p := &ps[k]
		if p.Kind != capture.KindRTP || p.RTP == nil {
			continue // attachRTP counts RTP only
		}
		i := int32(len(x.pkts))
		x.pkts = append(x.pkts, x.record(p))
		x.files = append(x.files, file)
		note(p.Src.Port(), i)
		if p.Dst.Port() != p.Src.Port() {
			note(p.Dst.Port(), i)
		}
	}
	for port, at := range tails {
		x.byPort[port] = x.merge(x.byPort[port], at)
	}
}

// before orders packets by time, then by arrival (Build's stable sort of
// the trace).
func (x *rtpIndex) before(a, b int32) int {
	if c := cmp.Compare(x.pkts[a].ns, x.pkts[b].ns); c != 0 {
		return c
	}
	return int(a - b)
}

// merge puts l[at:] (new entries) into order with l[:at] (in order):
// only the part of the old entries later than the first new one moves,
// which for a live capture is a few packets of another file.
func (x *rtpIndex) merge(l []int32, at int) []int32 {
	seg := l[at:]
	slices.SortFunc(seg, x.before)
	if at == 0 || x.before(l[at-1], seg[0]) <= 0 {
		return l
	}
	p := sort.Search(at, func(k int) bool { return x.before(l[k], seg[0]) > 0 })
	old := slices.Clone(l[p:at])
	seg = slices.Clone(seg)
	out := l[:p]
	i, j := 0, 0
	for i < len(old) && j < len(seg) {
		if x.before(old[i], seg[j]) <= 0 {
			out = append(out, old[i])
			i++
		} else {
			out = append(out, seg[j])
			j++
		}
	}
	out = append(append(out, old[i:]...), seg[j:]...)
	return out
}

// drop forgets the packets of the files gone, passing each to dropped.
func (x *rtpIndex) drop(gone map[capture.FileID]bool, dropped func(ns int64, ports ...uint16)) {
	keep := 0
	for _, f := range x.files {
		if !gone[f] {
			keep++
		}
	}
	if keep == len(x.files) {
		return
	}
	// The packets kept keep their order: compact them and renumber the
	// port lists, nothing to sort again.
	moved := make([]int32, len(x.pkts))
	n := int32(0)
	for i, f := range x.files {
		if gone[f] {
			moved[i] = -1
			dropped(x.pkts[i].ns, x.pkts[i].sport, x.pkts[i].dport)
			continue
		}
		moved[i] = n
		x.pkts[n], x.files[n] = x.pkts[i], f
		n++
	}
	clear(x.pkts[n:])
	x.pkts, x.files = x.pkts[:n], x.files[:n]
	for port, l := range x.byPort {
		k := l[:0]
		for _, i := range l {
			if moved[i] >= 0 {
				k = append(k, moved[i])
			}
		}
		if len(k) == 0 {
			delete(x.byPort, port)
		} else {
			x.byPort[port] = k
		}
	}
}

// window yields, in time order, the packets from or to any of ports
// between from and to, each once: a merge of the ports' lists.
func (x *rtpIndex) window(ports map[uint16]bool, from, to time.Time) iter.Seq[*capture.Packet] {
	f, t := from.UnixNano(), to.UnixNano()
	var runs [][]int32
	for port := range ports {
		l := x.byPort[port]
		k := sort.Search(len(l), func(k int) bool { return x.pkts[l[k]].ns >= f })
		e := k + sort.Search(len(l)-k, func(j int) bool { return x.pkts[l[k+j]].ns > t })
		if e > k {
			runs = append(runs, l[k:e])
		}
	}
	return func(yield func(*capture.Packet) bool) {
		p := &capture.Packet{RTP: &capture.RTPHeader{}}
		last := int32(-1)
		for {
			best := -1
			for r, run := range runs {
				if len(run) > 0 && (best < 0 || x.before(run[0], runs[best][0]) < 0) {
					best = r
				}
			}
			if best < 0 {
				return
			}
			i := runs[best][0]
			runs[best] = runs[best][1:]
			// A packet between two of the ports is in both lists.
			if i == last {
				continue
			}
			last = i
			// One Packet refilled for each: attachRTP keeps none.
			x.packet(i, p)
			if !yield(p) {
				return
			}
		}
	}
}
