package capture

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/siplab/siplab/internal/fixtures"
)

// tailModel is what a Tail's reader holds: the packets of each file.
type tailModel map[FileID][]Packet

// read reads what the folder gained and applies it.
func (m tailModel) read(t *testing.T, tail *Tail) *Batch {
	t.Helper()
	b, err := tail.Read()
	if err != nil {
		t.Fatal(err)
	}
	m.apply(b)
	return b
}

func (m tailModel) apply(b *Batch) {
	if b.Reset {
		clear(m)
	}
	for _, id := range b.Gone {
		delete(m, id)
	}
	for _, f := range b.Files {
		m[f.File] = append(append(m[f.File], f.SIP...), f.RTP...)
	}
}

// keys lists packets as comparable strings, sorted: the two readers may
// order packets of equal times differently across files.
func keys(ps []Packet) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%d|%s|%s|%s|%s|%s|%q|%v", p.Time.UnixNano(), p.Time.Location(), p.Iface, p.Kind, p.Src, p.Dst, p.Payload, p.RTP))
	}
	sort.Strings(out)
	return out
}

func (m tailModel) keys() []string {
	var all []Packet
	for _, ps := range m {
		all = append(all, ps...)
	}
	return keys(all)
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		return nil
	}
	tr, err := ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return keys(append(tr.SIP, tr.RTP...))
}

// Tail read as the files grow, rotate and are deleted by rotation holds
// what ReadFiles reads from the folder at that moment, after every step.
func TestTailFollowsGrowthAndRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := newRotor(dir, "router-a", 24<<10, 3, testIfaces("router-a", "lan", "wan"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	tail := &Tail{Dir: dir}
	model := tailModel{}
	src, dst := netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060")
	rsrc, rdst := netip.MustParseAddrPort("192.168.1.50:16000"), netip.MustParseAddrPort("203.0.113.3:17000")
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	i, gone, rotations := 0, 0, 0
	for step := 0; step < 40; step++ {
		for k := 0; k < 15; k++ {
			i++
			var data []byte
			if i%5 == 0 {
				data = frameUDP(t, src, dst, []byte(sipRequest("OPTIONS", fmt.Sprintf("c%04d", i), strings.Repeat("x", 200))))
			} else {
				data = frameUDP(t, rsrc, rdst, rtpPacket(uint16(i), uint32(i*160), 0xabc, 160))
			}
			ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond), CaptureLength: len(data), Length: len(data), InterfaceIndex: i % 2}
			size := w.size
			if err := w.write(ci, data); err != nil {
				t.Fatal(err)
			}
			if w.size < size {
				rotations++
			}
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		b, err := tail.Read()
		if err != nil {
			t.Fatal(err)
		}
		if b.Reset != (step == 0) {
			t.Fatalf("step %d: Reset %v", step, b.Reset)
		}
		gone += len(b.Gone)
		model.apply(b)
		if got, want := model.keys(), readDir(t, dir); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: tail holds %d packets, the folder %d", step, len(got), len(want))
		}
	}
	if rotations < 3 || gone < rotations-2 {
		t.Fatalf("the test did not exercise rotation: %d rotations, %d files gone", rotations, gone)
	}
	// Nothing new: an empty batch.
	if b, err := tail.Read(); err != nil || !b.Empty() || b.Bytes != 0 {
		t.Fatalf("idle read: %+v %v", b, err)
	}
}

// A block half written is left for the next read; a file truncated in
// place is dropped and read again.
func TestTailPartialBlockAndTruncation(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "captures", "normal", "router-a.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "router-a.pcapng")
	cut := len(raw) / 2
	if err := os.WriteFile(path, raw[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	tail := &Tail{Dir: dir}
	model := tailModel{}
	b := model.read(t, tail)
	half := len(model.keys())
	if half == 0 || b.Bytes != int64(cut) {
		t.Fatalf("half a file: %d packets from %d bytes", half, b.Bytes)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(raw[cut:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b = model.read(t, tail)
	if got, want := model.keys(), readDir(t, dir); !reflect.DeepEqual(got, want) || len(got) <= half {
		t.Fatalf("after the rest: %d packets, the file %d", len(got), len(want))
	}
	// Truncated in place and rewritten shorter (a daemon restarted).
	if err := os.WriteFile(path, raw[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	b, err = tail.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Gone) != 1 {
		t.Fatalf("truncation: gone %v", b.Gone)
	}
	model.apply(b)
	if got, want := model.keys(), readDir(t, dir); !reflect.DeepEqual(got, want) || len(got) != half {
		t.Fatalf("after truncation: %d packets, the file %d (half %d)", len(got), len(want), half)
	}
}

// On every recorded fixture Tail reads exactly what ReadFiles reads, with
// and without a boundary; a new boundary starts the folder over.
func TestTailMatchesReadFiles(t *testing.T) {
	for _, scenario := range fixtures.Scenarios(t) {
		t.Run(scenario, func(t *testing.T) {
			dir := fixtures.Copy(t, scenario)
			paths := fixtures.Files(t, scenario)
			tail := &Tail{Dir: dir}
			model := tailModel{}
			b := model.read(t, tail)
			want := readDir(t, dir)
			if got := model.keys(); !reflect.DeepEqual(got, want) {
				t.Fatalf("tail %d packets, ReadFiles %d", len(got), len(want))
			}
			// A boundary in the middle of the SIP.
			tr, _ := ReadFiles(filepath.Join(dir, filepath.Base(paths[0])))
			if len(tr.SIP) < 2 {
				return
			}
			if err := WriteBoundary(dir, tr.SIP[len(tr.SIP)/2].Time); err != nil {
				t.Fatal(err)
			}
			b, err := tail.Read()
			if err != nil {
				t.Fatal(err)
			}
			if !b.Reset {
				t.Fatal("a new boundary does not start the folder over")
			}
			model.apply(b)
			if got, want := model.keys(), readDir(t, dir); !reflect.DeepEqual(got, want) {
				t.Fatalf("with a boundary: tail %d packets, ReadFiles %d", len(got), len(want))
			}
		})
	}
}
