package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// FileName is the current capture file of node in dir; rotated files are
// <node>.1.pcapng (newest) to <node>.<MaxFiles-1>.pcapng (oldest).
func FileName(dir, node string) string { return filepath.Join(dir, node+".pcapng") }

func rotatedName(dir, node string, n int) string {
	if n == 0 {
		return FileName(dir, node)
	}
	return filepath.Join(dir, node+"."+strconv.Itoa(n)+".pcapng")
}

// Files lists the capture files of node in dir, oldest first, the current
// file last: the order to read them in.
func Files(dir, node string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("capture: list %s: %w", dir, err)
	}
	type file struct {
		n    int
		path string
	}
	var files []file
	for _, e := range ents {
		if n, ok := rotationIndex(e.Name(), node); ok && e.Type().IsRegular() {
			files = append(files, file{n, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].n > files[j].n })
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out, nil
}

// rotationIndex parses "<node>.pcapng" (0) and "<node>.<n>.pcapng" (n).
func rotationIndex(name, node string) (int, bool) {
	rest, ok := strings.CutPrefix(name, node+".")
	if !ok {
		return 0, false
	}
	if rest == "pcapng" {
		return 0, true
	}
	num, ok := strings.CutSuffix(rest, ".pcapng")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || strconv.Itoa(n) != num {
		return 0, false
	}
	return n, true
}

// rotor writes one node's pcapng file and keeps the node's files within
// maxBytes each and maxFiles in number.
type rotor struct {
	dir, node string
	maxBytes  int64
	maxFiles  int
	ifaces    []pcapgo.NgInterface

	f *os.File
	w *pcapgo.NgWriter
	// pending holds whole blocks not yet in the file. pcapgo's own bufio
	// writes through whenever its 4 KiB fill, cutting blocks in two; a
	// reader of the live file (tshark, the ladder) would then see a
	// truncated last packet. Blocks reach the file only in flush, whole.
	pending bytes.Buffer
	size    int64 // bytes in the current file, pending ones included
	header  int64 // bytes of section header + interface blocks
}

// flushAt moves pending blocks to the file early when many accumulate.
const flushAt = 256 << 10

func newRotor(dir, node string, maxBytes int64, maxFiles int, ifaces []pcapgo.NgInterface) (*rotor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture: create %s: %w", dir, err)
	}
	r := &rotor{dir: dir, node: node, maxBytes: maxBytes, maxFiles: maxFiles, ifaces: ifaces}
	// A file left by an earlier run (the daemon restarted) is kept as the
	// newest rotated file rather than overwritten: it may hold the very
	// packets somebody is looking for.
	if err := r.shift(); err != nil {
		return nil, err
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// shift renames <node>.pcapng to .1, .1 to .2, ... and deletes what falls off
// the end, including leftovers of a run with a larger MaxFiles.
func (r *rotor) shift() error {
	existing, err := Files(r.dir, r.node)
	if err != nil {
		return err
	}
	for _, p := range existing {
		n, _ := rotationIndex(filepath.Base(p), r.node)
		if n >= r.maxFiles-1 {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("capture: drop oldest file: %w", err)
			}
		}
	}
	for n := r.maxFiles - 2; n >= 0; n-- {
		err := os.Rename(rotatedName(r.dir, r.node, n), rotatedName(r.dir, r.node, n+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("capture: rotate: %w", err)
		}
	}
	return nil
}

func (r *rotor) open() error {
	path := FileName(r.dir, r.node)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("capture: create %s: %w", path, err)
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: "siplab capture",
		OS:          runtime.GOOS,
		Hardware:    runtime.GOARCH,
		Comment:     "capture point " + r.node,
	}}
	r.f = f
	r.pending.Reset()
	w, err := pcapgo.NewNgWriterInterface(&r.pending, r.ifaces[0], opts)
	if err == nil {
		for _, ifc := range r.ifaces[1:] {
			if _, err = w.AddInterface(ifc); err != nil {
				break
			}
		}
	}
	if err == nil {
		r.w = w
		err = r.flush()
	}
	if err != nil {
		f.Close()
		r.f, r.w = nil, nil
		return fmt.Errorf("capture: write header of %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		r.f, r.w = nil, nil
		return fmt.Errorf("capture: stat %s: %w", path, err)
	}
	r.size, r.header = st.Size(), st.Size()
	return nil
}

// recordSize is the size of an enhanced packet block without options, as
// pcapgo writes it: 28 bytes of header, data padded to 4, 4 bytes trailer.
func recordSize(n int) int64 { return int64(32 + (n+3)&^3) }

func (r *rotor) write(ci gopacket.CaptureInfo, data []byte) error {
	rec := recordSize(len(data))
	// Rotate before the bound would be crossed, unless the file holds
	// nothing but headers (config validation guarantees a packet fits).
	if r.size+rec > r.maxBytes && r.size > r.header {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	if err := r.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("capture: write %s: %w", r.f.Name(), err)
	}
	r.size += rec
	if r.pending.Len() >= flushAt {
		return r.flush()
	}
	return nil
}

func (r *rotor) rotate() error {
	if err := r.close(); err != nil {
		return err
	}
	if err := r.shift(); err != nil {
		return err
	}
	return r.open()
}

// flush writes the pending whole blocks to the file in one write.
func (r *rotor) flush() error {
	if r.w == nil {
		return nil
	}
	if err := r.w.Flush(); err != nil { // into pending: cannot fail
		return fmt.Errorf("capture: flush %s: %w", r.f.Name(), err)
	}
	if r.pending.Len() == 0 {
		return nil
	}
	if _, err := r.f.Write(r.pending.Bytes()); err != nil {
		return fmt.Errorf("capture: write %s: %w", r.f.Name(), err)
	}
	r.pending.Reset()
	return nil
}

func (r *rotor) close() error {
	if r.f == nil {
		return nil
	}
	err := r.flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	name := r.f.Name()
	r.f, r.w = nil, nil
	if err != nil {
		return fmt.Errorf("capture: close %s: %w", name, err)
	}
	return nil
}

// ngInterface describes one captured side in the file.
func ngInterface(name, desc string, snap int) pcapgo.NgInterface {
	return pcapgo.NgInterface{
		Name:                name,
		Description:         desc,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeEthernet,
		SnapLength:          uint32(snap),
		TimestampResolution: 9,
	}
}
