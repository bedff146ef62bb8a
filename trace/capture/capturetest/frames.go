package capturetest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// UDPFrame is one Ethernet/IPv4/UDP frame carrying payload, as a capture
// point records it.
func UDPFrame(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	return udpFrame(src, dst, payload)
}

// File is one node's capture file (<dir>/<node>.pcapng) with one
// interface per side ("router-w/lan", "router-w/wan"), for tests that lay
// out their own packets.
type File struct {
	f     *os.File
	w     *pcapgo.NgWriter
	sides map[string]int
}

// NewFile creates <dir>/<node>.pcapng with the node's sides.
func NewFile(dir, node string, sides ...string) (*File, error) {
	f, err := os.Create(filepath.Join(dir, node+".pcapng"))
	if err != nil {
		return nil, err
	}
	out := &File{f: f, sides: map[string]int{}}
	for i, side := range sides {
		ifc := pcapgo.NgInterface{Name: node + "/" + side, OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet, SnapLength: 65535, TimestampResolution: 9}
		if i == 0 {
			out.w, err = pcapgo.NewNgWriterInterface(f, ifc, pcapgo.NgWriterOptions{})
		} else {
			_, err = out.w.AddInterface(ifc)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capturetest: %s: %w", node, err)
		}
		out.sides[side] = i
	}
	return out, nil
}

// UDP records a UDP packet at a side at a moment.
func (f *File) UDP(side string, at time.Time, src, dst netip.AddrPort, payload []byte) error {
	i, ok := f.sides[side]
	if !ok {
		return fmt.Errorf("capturetest: no side %q", side)
	}
	b, err := udpFrame(src, dst, payload)
	if err != nil {
		return err
	}
	return f.w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(b), Length: len(b), InterfaceIndex: i}, b)
}

// Close flushes and closes the file.
func (f *File) Close() error {
	if err := f.w.Flush(); err != nil {
		f.f.Close()
		return err
	}
	return f.f.Close()
}
