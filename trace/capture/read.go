package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/siplab/siplab/trace/siptext"
)

// Trace is what a set of capture files holds, in time order.
type Trace struct {
	// Interfaces are the capture points found, in file order ("router-a/lan").
	Interfaces []string
	// SIP holds every SIP message (Kind KindSIP).
	SIP []Packet
	// RTP holds the rest, the media plane: RTP and RTCP packet summaries
	// (Kind KindRTP, KindRTCP), STUN messages and TURN ChannelData frames
	// (KindSTUN, KindChannelData), which share the media's ports.
	RTP []Packet
	// Truncated is set when a file ended in the middle of a block: normal
	// for the file a daemon is still writing.
	Truncated bool
	// Boundary is set when ReadFiles found a BoundaryFile next to the
	// files: packets before it were left out.
	Boundary time.Time
}

// ReadFile reads one pcapng file. Packets on non-Ethernet interfaces are
// skipped; interfaces without a name are called "<file>#<n>".
func ReadFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	tr := &Trace{}
	if err := readInto(tr, f, path); err != nil {
		return nil, err
	}
	sortTrace(tr)
	return tr, nil
}

// ReadFiles reads several files (several capture points, or one node's
// rotated files from Files) and merges them by time: the ladder's view of
// one call across routers and phones. A BoundaryFile in a folder holding
// any of the files (the lab's last reset) leaves out what was captured
// before it.
func ReadFiles(paths ...string) (*Trace, error) {
	tr := &Trace{}
	var since time.Time
	seen := map[string]bool{}
	for _, p := range paths {
		dir := filepath.Dir(p)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		t, ok, err := ReadBoundary(dir)
		if err != nil {
			return nil, err
		}
		if ok && t.After(since) {
			since = t
		}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		err = readInto(tr, f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	sortTrace(tr)
	if !since.IsZero() {
		tr.cut(since)
	}
	return tr, nil
}

// Read reads a pcapng stream; name labels unnamed interfaces and errors.
func Read(r io.Reader, name string) (*Trace, error) {
	tr := &Trace{}
	if err := readInto(tr, r, name); err != nil {
		return nil, err
	}
	sortTrace(tr)
	return tr, nil
}

var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

func readInto(tr *Trace, r io.Reader, name string) error {
	// Sniff the magic first: pcapgo's errors for a classic pcap or a text
	// file are cryptic.
	var head [4]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			// An empty file is a capture that has not started yet.
			tr.Truncated = true
			return nil
		}
		return fmt.Errorf("%w: %s: only %d bytes", ErrNotPcapng, name, n)
	}
	if !bytes.Equal(head[:], pcapngMagic) {
		return fmt.Errorf("%w: %s starts with % x (a classic pcap starts with d4 c3 b2 a1)", ErrNotPcapng, name, head)
	}
	ng, err := pcapgo.NewNgReader(io.MultiReader(bytes.NewReader(head[:]), r),
		pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			tr.Truncated = true
			return nil
		}
		return fmt.Errorf("%w: %s: %w", ErrNotPcapng, name, err)
	}
	dec := NewDecoder()
	known := map[string]bool{}
	for _, s := range tr.Interfaces {
		known[s] = true
	}
	ifname := func(i int) string {
		ifc, err := ng.Interface(i)
		if err != nil || ifc.Name == "" {
			return name + "#" + strconv.Itoa(i)
		}
		return ifc.Name
	}
	for {
		data, ci, err := ng.ReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				tr.Truncated = true
				break
			}
			return fmt.Errorf("capture: read %s: %w", name, err)
		}
		for i := 0; i < ng.NInterfaces(); i++ {
			if s := ifname(i); !known[s] {
				known[s] = true
				tr.Interfaces = append(tr.Interfaces, s)
			}
		}
		if len(ci.AncillaryData) > 0 {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok && lt != layers.LinkTypeEthernet {
				continue
			}
		}
		for _, p := range dec.Decode(ifname(ci.InterfaceIndex), ci.Timestamp, data) {
			if p.Kind == KindSIP {
				tr.SIP = append(tr.SIP, p)
			} else {
				tr.RTP = append(tr.RTP, p)
			}
		}
	}
	return nil
}

func sortTrace(tr *Trace) {
	sort.SliceStable(tr.SIP, func(i, j int) bool { return tr.SIP[i].Time.Before(tr.SIP[j].Time) })
	sort.SliceStable(tr.RTP, func(i, j int) bool { return tr.RTP[i].Time.Before(tr.RTP[j].Time) })
}

// StartLine returns a SIP message's first line ("REGISTER sip:x SIP/2.0",
// "SIP/2.0 200 OK").
func (p Packet) StartLine() string {
	line, _, _ := bytes.Cut(p.Payload, []byte("\n"))
	return string(bytes.TrimRight(line, "\r"))
}

// Header returns the first value of a SIP header (compact forms match their
// full names, case-insensitively), or "".
func (p Packet) Header(name string) string { return siptext.Header(p.Payload, name) }
