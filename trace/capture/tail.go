package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Tail reads a capture folder as it grows: each Read decodes only the
// blocks appended since the last one. The capture points only ever append
// whole blocks to their current file and rename it when it is full (see
// rotor), so a file is followed by its identity (device and inode), not
// its name: router-a.pcapng becoming router-a.1.pcapng is the same file,
// read on from where it was; the new router-a.pcapng is a new one.
//
// What ReadFiles does in one go, Tail does as it goes: a BoundaryFile in
// the folder leaves out the packets before it and the SIP of dialogs
// begun before it (a new boundary, `siplab reset`, starts the folder
// over); a file deleted by rotation takes its packets with it (Batch.Gone);
// a file that shrank (a daemon restarted and truncated it) is read again
// from its start. Not safe for concurrent use.
type Tail struct {
	Dir string

	files    map[fileIdent]*tailFile
	nextID   FileID
	boundary time.Time
	// before holds the Call-IDs seen before the boundary: their later
	// messages are left out, as Trace.cut does.
	before map[string]bool
	read   bool
}

// FileID names one capture file for as long as a Tail follows it (a file
// keeps it across a rotation's rename).
type FileID uint64

// Batch is what one Tail.Read found.
type Batch struct {
	// Reset: drop everything taken from earlier batches before taking
	// this one (the first read, or a new boundary).
	Reset bool
	// Gone are files whose packets are no longer in the folder (deleted
	// by rotation, or truncated and read again under a new FileID).
	Gone []FileID
	// Files are the packets appended to each file since the last read,
	// in file order (each file's own time order).
	Files []FileBatch
	// Boundary is the folder's boundary, zero when there is none.
	Boundary time.Time
	// Bytes is how much was read.
	Bytes int64
}

// FileBatch holds the new packets of one file.
type FileBatch struct {
	File FileID
	Path string
	SIP  []Packet
	RTP  []Packet
}

// Empty reports whether the batch changes nothing.
func (b *Batch) Empty() bool {
	if b.Reset || len(b.Gone) > 0 {
		return false
	}
	for _, f := range b.Files {
		if len(f.SIP)+len(f.RTP) > 0 {
			return false
		}
	}
	return true
}

type fileIdent struct {
	dev, ino uint64
	path     string // only where the platform gives no inode
}

type tailFile struct {
	id   FileID
	path string
	off  int64 // bytes decoded: always the end of a whole block
	seen bool  // listed in the current round
	// The file's section: its byte order and interfaces.
	order  binary.ByteOrder
	ifaces []tailIface
	dec    *Decoder
}

type tailIface struct {
	name     string
	linkType layers.LinkType
	// A timestamp is ticks of 1/perSec seconds (pcapgo's arithmetic,
	// so both readers give the same times).
	perSec, up, down uint64
}

func (i *tailIface) resolution(exp uint8, binary bool) {
	i.perSec = 1
	for range exp {
		if binary {
			i.perSec *= 2
		} else {
			i.perSec *= 10
		}
	}
	i.up, i.down = 1, 1
	if i.perSec < 1e9 {
		i.up = 1e9 / i.perSec
	} else {
		i.down = i.perSec / 1e9
	}
}

// Read decodes what the folder's files gained since the last Read.
func (t *Tail) Read() (*Batch, error) {
	b := &Batch{}
	bound, ok, err := ReadBoundary(t.Dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		bound = time.Time{}
	}
	if !t.read || !bound.Equal(t.boundary) {
		t.files, t.before, t.boundary, t.read = map[fileIdent]*tailFile{}, map[string]bool{}, bound, true
		b.Reset = true
	}
	b.Boundary = t.boundary
	ents, err := os.ReadDir(t.Dir)
	if err != nil {
		return nil, fmt.Errorf("capture: list %s: %w", t.Dir, err)
	}
	// In name order, as ReadFiles is given them (labops sorts them).
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, f := range t.files {
		f.seen = false
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pcapng") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(t.Dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			continue // rotated away between the listing and now
		}
		id := identOf(path, fi)
		f := t.files[id]
		if f == nil {
			// A file last written before the boundary holds nothing to keep.
			if !t.boundary.IsZero() && fi.ModTime().Before(t.boundary) {
				continue
			}
			t.nextID++
			f = &tailFile{id: t.nextID}
			t.files[id] = f
		}
		f.seen, f.path = true, path
		if fi.Size() < f.off {
			// Truncated in place: what we had of it is gone.
			b.Gone = append(b.Gone, f.id)
			t.nextID++
			*f = tailFile{id: t.nextID, path: path, seen: true}
		}
		if fi.Size() == f.off {
			continue
		}
		fb, n, err := f.readNew(fi.Size())
		b.Bytes += n
		if err != nil {
			return nil, err
		}
		if len(fb.SIP)+len(fb.RTP) > 0 {
			b.Files = append(b.Files, fb)
		}
	}
	for k, f := range t.files {
		if !f.seen {
			delete(t.files, k)
			if !b.Reset {
				b.Gone = append(b.Gone, f.id)
			}
		}
	}
	t.cut(b)
	return b, nil
}

// cut applies the boundary to a batch: packets before it go, and the SIP
// of a dialog that began before it.
func (t *Tail) cut(b *Batch) {
	if t.boundary.IsZero() {
		return
	}
	for _, f := range b.Files {
		for _, p := range f.SIP {
			if p.Time.Before(t.boundary) {
				if id := p.Header("Call-ID"); id != "" {
					t.before[id] = true
				}
			}
		}
	}
	for i := range b.Files {
		f := &b.Files[i]
		sip := f.SIP[:0]
		for _, p := range f.SIP {
			if !p.Time.Before(t.boundary) && !t.before[p.Header("Call-ID")] {
				sip = append(sip, p)
			}
		}
		rtp := f.RTP[:0]
		for _, p := range f.RTP {
			if !p.Time.Before(t.boundary) {
				rtp = append(rtp, p)
			}
		}
		f.SIP, f.RTP = sip, rtp
	}
}

func identOf(path string, fi os.FileInfo) fileIdent {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileIdent{dev: uint64(st.Dev), ino: st.Ino}
	}
	return fileIdent{path: path}
}

// readNew decodes the whole blocks between f.off and size; a block still
// being written (not possible with the lab's writer, but with another
// tool's) is left for the next read.
func (f *tailFile) readNew(size int64) (FileBatch, int64, error) {
	fb := FileBatch{File: f.id, Path: f.path}
	fh, err := os.Open(f.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fb, 0, nil
		}
		return fb, 0, fmt.Errorf("capture: %w", err)
	}
	defer fh.Close()
	buf := make([]byte, size-f.off)
	n, err := fh.ReadAt(buf, f.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fb, int64(n), fmt.Errorf("capture: read %s: %w", f.path, err)
	}
	buf = buf[:n]
	used, err := f.blocks(buf, &fb)
	f.off += int64(used)
	return fb, int64(n), err
}

const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 1
	blockSPB = 3
	blockEPB = 6
)

// blocks decodes the whole blocks at the start of buf and returns how many
// bytes they took.
func (f *tailFile) blocks(buf []byte, fb *FileBatch) (int, error) {
	pos := 0
	for len(buf)-pos >= 12 {
		blk := buf[pos:]
		if f.off == 0 && pos == 0 && binary.LittleEndian.Uint32(blk) != blockSHB {
			return 0, fmt.Errorf("%w: %s starts with % x (a classic pcap starts with d4 c3 b2 a1)", ErrNotPcapng, f.path, blk[:4])
		}
		typ := binary.LittleEndian.Uint32(blk) // the SHB type reads the same either way
		if typ == blockSHB {
			switch binary.LittleEndian.Uint32(blk[8:]) {
			case 0x1A2B3C4D:
				f.order = binary.LittleEndian
			case 0x4D3C2B1A:
				f.order = binary.BigEndian
			default:
				return pos, fmt.Errorf("%w: %s: bad byte-order magic at %d", ErrNotPcapng, f.path, f.off+int64(pos))
			}
			f.ifaces, f.dec = nil, NewDecoder()
		} else if f.order == nil {
			return pos, fmt.Errorf("%w: %s: block before the section header", ErrNotPcapng, f.path)
		} else {
			typ = f.order.Uint32(blk)
		}
		length := int(f.order.Uint32(blk[4:]))
		if length < 12 || length%4 != 0 {
			return pos, fmt.Errorf("capture: read %s: bad block length %d at %d", f.path, length, f.off+int64(pos))
		}
		if length > len(blk) {
			break // the rest is not written yet
		}
		body := blk[8 : length-4]
		switch typ {
		case blockIDB:
			f.ifaces = append(f.ifaces, f.idb(body))
		case blockEPB:
			f.epb(body, fb)
		}
		pos += length
	}
	return pos, nil
}

// idb reads an interface description block: link type, name, timestamp
// resolution (microseconds unless an option says otherwise).
func (f *tailFile) idb(body []byte) tailIface {
	ifc := tailIface{name: fmt.Sprintf("%s#%d", f.path, len(f.ifaces))}
	ifc.resolution(6, false)
	if len(body) < 8 {
		return ifc
	}
	ifc.linkType = layers.LinkType(f.order.Uint16(body))
	opts := body[8:]
	for len(opts) >= 4 {
		code, n := f.order.Uint16(opts), int(f.order.Uint16(opts[2:]))
		if code == 0 || 4+n > len(opts) {
			break
		}
		v := opts[4 : 4+n]
		switch code {
		case 2: // if_name
			if n > 0 {
				ifc.name = strings.TrimRight(string(v), "\x00")
			}
		case 9: // if_tsresol
			if n == 1 && v[0]&0x7f <= 63 {
				ifc.resolution(v[0]&0x7f, v[0]&0x80 != 0)
			}
		}
		opts = opts[4+(n+3)&^3:]
	}
	return ifc
}

// epb decodes an enhanced packet block's frame.
func (f *tailFile) epb(body []byte, fb *FileBatch) {
	if len(body) < 20 {
		return
	}
	idx := int(f.order.Uint32(body))
	if idx >= len(f.ifaces) {
		return
	}
	ifc := f.ifaces[idx]
	if ifc.linkType != layers.LinkTypeEthernet {
		return
	}
	ticks := uint64(f.order.Uint32(body[4:]))<<32 | uint64(f.order.Uint32(body[8:]))
	caplen := int(f.order.Uint32(body[12:]))
	if 20+caplen > len(body) {
		return
	}
	ts := time.Unix(int64(ticks/ifc.perSec), int64(ticks%ifc.perSec*ifc.up/ifc.down)).UTC()
	for _, p := range f.dec.Decode(ifc.name, ts, body[20:20+caplen]) {
		if p.Kind == KindSIP {
			fb.SIP = append(fb.SIP, p)
		} else {
			fb.RTP = append(fb.RTP, p)
		}
	}
}
