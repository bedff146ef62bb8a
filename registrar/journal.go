package registrar

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// On-disk layout of DataDir:
//
//	snapshot.jsonl         state at the start of generation G
//	journal-<G>.jsonl      changes since, one REGISTER per line
//
// A journal line is "<crc32c hex> <json record>\n". Each REGISTER's changes
// are one record, so a torn write can never apply half a REGISTER. Records
// hold absolute state (set this binding, delete that one, clear the AOR), so
// replaying a journal on a snapshot that already contains some of its
// effects gives the same result: that is what lets compaction run while
// REGISTERs keep arriving.
//
// Each AOR always goes to the same lane, so per-AOR order is file order.
const (
	journalLanes   = 8
	snapshotName   = "snapshot.jsonl"
	snapshotFormat = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is one REGISTER's effect on one AOR.
type record struct {
	AOR   string             `json:"aor"`
	Clear bool               `json:"clear,omitempty"`
	Del   []string           `json:"del,omitempty"` // contact URIs
	Set   []location.Binding `json:"set,omitempty"`
}

type snapshotHeader struct {
	Format  int       `json:"format"`
	Gen     uint64    `json:"gen"`
	Written time.Time `json:"written"`
	Count   int       `json:"count"`
}

func encodeRecord(dst []byte, rec *record) ([]byte, error) {
	// "<crc32c hex> <json>\n": the JSON is appended after room for the CRC,
	// which is filled in once the JSON is known.
	start := len(dst)
	dst = append(dst, "00000000 "...)
	dst, err := appendRecordJSON(dst, rec)
	if err != nil {
		return dst[:start], err
	}
	var crc [4]byte
	c := crc32.Checksum(dst[start+9:], crcTable)
	crc[0], crc[1], crc[2], crc[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	hex.Encode(dst[start:start+8], crc[:])
	return append(dst, '\n'), nil
}

func decodeRecord(line []byte) (record, bool) {
	var rec record
	if len(line) < 10 || line[8] != ' ' {
		return rec, false
	}
	var crc [4]byte
	if _, err := hex.Decode(crc[:], line[:8]); err != nil {
		return rec, false
	}
	js := line[9:]
	c := uint32(crc[0])<<24 | uint32(crc[1])<<16 | uint32(crc[2])<<8 | uint32(crc[3])
	if crc32.Checksum(js, crcTable) != c {
		return rec, false
	}
	if err := json.Unmarshal(js, &rec); err != nil || rec.AOR == "" {
		return rec, false
	}
	return rec, true
}

// batch is one group commit: everyone whose record is in it waits on
// done, or has the flusher call it back (when).
type batch struct {
	done chan struct{}
	err  error // set before done is closed

	mu    sync.Mutex
	fired bool
	after []func()
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// when calls f once the batch is durable or has failed (err tells which):
// at once if it is already, else on the flusher's goroutine right after
// the fsync. f must not block. The registrar's held 200s are sent this
// way, together, without waking a goroutine per REGISTER.
func (b *batch) when(f func()) {
	b.mu.Lock()
	if b.fired {
		b.mu.Unlock()
		f()
		return
	}
	b.after = append(b.after, f)
	b.mu.Unlock()
}

// complete records the outcome, releases the waiters and runs the
// callbacks.
func (b *batch) complete(err error) {
	b.err = err
	close(b.done)
	b.mu.Lock()
	b.fired = true
	after := b.after
	b.after = nil
	b.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// journal is the append-only file. Appenders copy their line into one of
// several lanes (chosen by AOR shard) under that lane's short lock, so no
// lock is shared by all REGISTERs. One flusher goroutine takes every lane's
// bytes, writes them with one write and one fsync, then releases everyone
// who was waiting: REGISTERs arriving during an fsync share the next one.
// One file and one fsync per batch, because concurrent fsyncs on one
// filesystem serialise in the kernel anyway (measured: 4 files were 30%
// slower than 1).
type journal struct {
	lanes  [journalLanes]lane
	failed atomic.Pointer[error] // sticky: once a write fails, nothing more is acknowledged
	closed atomic.Bool
	syncs  atomic.Uint64 // fsyncs done
	recs   atomic.Uint64 // records appended
	size   atomic.Int64  // bytes in the current file

	// full is signalled (never blocking) when the current file passes
	// fullAt bytes, so compaction keeps the disk bounded under heavy load
	// rather than only on a timer.
	full   chan struct{}
	fullAt int64

	fileMu sync.Mutex // held while writing; guards f, wbuf and taken
	f      *os.File
	wbuf   []byte
	taken  []*batch

	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

type lane struct {
	mu      sync.Mutex
	buf     []byte
	pending *batch
	spare   []byte // guarded by journal.fileMu
	_       [40]byte
}

func newJournal(f *os.File, fullAt int64) *journal {
	j := &journal{
		f:      f,
		full:   make(chan struct{}, 1),
		fullAt: fullAt,
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for i := range j.lanes {
		j.lanes[i].pending = newBatch()
	}
	go j.run()
	return j
}

func failedBatch(err error) *batch {
	b := newBatch()
	b.complete(err)
	return b
}

// append queues a record on a lane; the returned batch completes when it
// is durable. Records of one lane reach the file in append order.
func (j *journal) append(laneNo int, line []byte) *batch {
	l := &j.lanes[laneNo%journalLanes]
	l.mu.Lock()
	if ep := j.failed.Load(); ep != nil {
		l.mu.Unlock()
		return failedBatch(*ep)
	}
	if j.closed.Load() {
		l.mu.Unlock()
		return failedBatch(ErrClosed)
	}
	l.buf = append(l.buf, line...)
	b := l.pending
	l.mu.Unlock()
	j.recs.Add(1)
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return b
}

// groupCommitEvery is the least time between the starts of two flushes.
// A REGISTER arriving when the journal has been idle that long is written
// and fsync'd at once; under load the flusher first waits out the rest of
// it, so one fsync carries what arrived meanwhile. Each fsync costs the
// daemon ~80 µs of CPU (ext4 on the bench machine) however little it
// carries: at 8,000 REGISTERs a second, flushing as soon as the last
// fsync returned gave ~750 fsyncs of ~11 records, 12 % of the CPU; with
// 5 ms, at most 200 of ~40. What it adds is at most 5 ms before a 200,
// and only under load.
const groupCommitEvery = 5 * time.Millisecond

func (j *journal) run() {
	defer close(j.done)
	var last time.Time
	for {
		select {
		case <-j.kick:
			if wait := groupCommitEvery - time.Since(last); wait > 0 {
				time.Sleep(wait)
			}
			last = time.Now()
			j.flush()
		case <-j.quit:
			j.flush()
			return
		}
	}
}

func (j *journal) flush() {
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	j.flushLocked()
}

func (j *journal) flushLocked() {
	j.wbuf, j.taken = j.wbuf[:0], j.taken[:0]
	for i := range j.lanes {
		l := &j.lanes[i]
		l.mu.Lock()
		if len(l.buf) == 0 {
			l.mu.Unlock()
			continue
		}
		buf, b := l.buf, l.pending
		l.buf, l.pending = l.spare[:0], newBatch()
		l.mu.Unlock()
		j.wbuf = append(j.wbuf, buf...)
		j.taken = append(j.taken, b)
		if cap(buf) <= 1<<20 { // do not keep a huge buffer after a burst
			l.spare = buf
		} else {
			l.spare = nil
		}
	}
	if len(j.taken) == 0 {
		return
	}
	_, err := j.f.Write(j.wbuf)
	if n := j.size.Add(int64(len(j.wbuf))); j.fullAt > 0 && n >= j.fullAt {
		select {
		case j.full <- struct{}{}:
		default:
		}
	}
	if err == nil {
		err = j.f.Sync()
		j.syncs.Add(1)
	}
	if err != nil {
		err = fmt.Errorf("registrar: journal %s: %w", j.f.Name(), err)
		j.failed.CompareAndSwap(nil, &err)
	}
	for _, b := range j.taken {
		b.complete(err)
	}
	if cap(j.wbuf) > 1<<20 {
		j.wbuf = nil
	}
}

// rotate makes everything appended so far durable in the current file and
// sends later records to next.
func (j *journal) rotate(next *os.File) error {
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	j.flushLocked()
	old := j.f
	j.f = next
	j.size.Store(0)
	var err error
	if ep := j.failed.Load(); ep != nil {
		err = *ep
	}
	if cerr := old.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

func (j *journal) close() error {
	if !j.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(j.quit)
	<-j.done
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	return j.f.Close()
}

// persist owns DataDir.
type persist struct {
	dir     string
	fullAt  int64
	log     *slog.Logger
	gen     uint64
	journal *journal
	compMu  sync.Mutex // one compaction at a time
}

func journalName(gen uint64) string {
	return fmt.Sprintf("journal-%020d.jsonl", gen)
}

type journalFile struct {
	path string
	gen  uint64
}

func listJournals(dir string) ([]journalFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registrar: data dir: %w", err)
	}
	var out []journalFile
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "journal-") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		gen, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "journal-"), ".jsonl"), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, journalFile{filepath.Join(dir, name), gen})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].gen < out[b].gen })
	return out, nil
}

// load reads the snapshot and replays the journals into st. It returns the
// highest generation seen.
func (p *persist) load(st *store) (uint64, error) {
	os.Remove(filepath.Join(p.dir, snapshotName+".tmp"))
	var gen uint64
	data, err := os.ReadFile(filepath.Join(p.dir, snapshotName))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return 0, fmt.Errorf("registrar: snapshot: %w", err)
	default:
		gen, err = readSnapshot(data, st)
		if err != nil {
			return 0, err
		}
	}
	files, err := listJournals(p.dir)
	if err != nil {
		return 0, err
	}
	maxGen := gen
	for _, jf := range files {
		if jf.gen < gen {
			continue // folded into the snapshot; removed after the next one
		}
		maxGen = max(maxGen, jf.gen)
		if err := p.replay(jf.path, st); err != nil {
			return 0, err
		}
	}
	return maxGen, nil
}

func readSnapshot(data []byte, st *store) (uint64, error) {
	lines := bytes.Split(data, []byte("\n"))
	var h snapshotHeader
	if err := json.Unmarshal(lines[0], &h); err != nil || h.Format != snapshotFormat {
		return 0, fmt.Errorf("%w: bad header", ErrCorruptSnapshot)
	}
	n := 0
	for i, line := range lines[1:] {
		if len(line) == 0 {
			continue
		}
		var b location.Binding
		if err := json.Unmarshal(line, &b); err != nil {
			return 0, fmt.Errorf("%w: line %d: %v", ErrCorruptSnapshot, i+2, err)
		}
		st.apply(&record{AOR: b.AOR, Set: []location.Binding{b}})
		n++
	}
	if n != h.Count {
		return 0, fmt.Errorf("%w: %d bindings, header says %d", ErrCorruptSnapshot, n, h.Count)
	}
	return h.Gen, nil
}

// replay applies one journal file. A bad record with nothing valid after it
// is the torn tail of a write interrupted by a crash: its REGISTER was never
// acknowledged (the fsync did not return), so it is dropped and reported.
// A bad record followed by good ones is damage and stops the start.
func (p *persist) replay(path string, st *store) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("registrar: journal: %w", err)
	}
	off, lineNo, applied := 0, 0, 0
	for off < len(data) {
		lineNo++
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
			end += off
		} else {
			end = len(data)
		}
		rec, ok := decodeRecord(data[off:end])
		if !ok {
			if later := firstValidAfter(data[next:]); later >= 0 {
				return fmt.Errorf("%w: %s line %d is damaged but followed by valid records", ErrCorruptJournal, path, lineNo)
			}
			p.log.Warn("journal has a torn tail, dropping it (a write was interrupted; it was never acknowledged)",
				"file", path, "line", lineNo, "offset", off, "dropped_bytes", len(data)-off)
			break
		}
		st.apply(&rec)
		applied++
		off = next
	}
	p.log.Debug("journal replayed", "file", path, "records", applied)
	return nil
}

func firstValidAfter(data []byte) int {
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data) - off
		}
		if _, ok := decodeRecord(data[off : off+end]); ok {
			return off
		}
		off += end + 1
	}
	return -1
}

func writeSnapshot(dir string, gen uint64, bs []location.Binding, now time.Time) error {
	tmp := filepath.Join(dir, snapshotName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("registrar: snapshot: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(snapshotHeader{Format: snapshotFormat, Gen: gen, Written: now, Count: len(bs)})
	for i := range bs {
		if err := enc.Encode(&bs[i]); err != nil {
			f.Close()
			return fmt.Errorf("registrar: snapshot: %w", err)
		}
		if buf.Len() > 1<<20 {
			if _, err := f.Write(buf.Bytes()); err != nil {
				f.Close()
				return fmt.Errorf("registrar: snapshot: %w", err)
			}
			buf.Reset()
		}
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, snapshotName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("registrar: snapshot: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openPersist loads DataDir into st and starts a fresh generation.
func openPersist(dir string, compactBytes int64, st *store, log *slog.Logger, now time.Time) (*persist, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registrar: data dir: %w", err)
	}
	p := &persist{dir: dir, fullAt: compactBytes, log: log}
	gen, err := p.load(st)
	if err != nil {
		return nil, err
	}
	st.gc(now)
	p.gen = gen
	if err := p.startGen(st, now); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// startGen opens the journals of the next generation (rotating the running
// ones into them), writes the snapshot that starts it and removes older
// files.
func (p *persist) startGen(st *store, now time.Time) error {
	p.compMu.Lock()
	defer p.compMu.Unlock()
	gen := p.gen + 1
	next, err := os.OpenFile(filepath.Join(p.dir, journalName(gen)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("registrar: journal: %w", err)
	}
	if err := syncDir(p.dir); err != nil {
		next.Close()
		return fmt.Errorf("registrar: data dir: %w", err)
	}
	if p.journal == nil {
		p.journal = newJournal(next, p.fullAt)
	} else if err := p.journal.rotate(next); err != nil {
		// Every record in the old file was applied to memory before it
		// was appended, so the snapshot taken below contains it.
		return err
	}
	bs := st.all(now)
	if err := writeSnapshot(p.dir, gen, bs, now); err != nil {
		return err
	}
	p.gen = gen
	files, err := listJournals(p.dir)
	if err != nil {
		return err
	}
	for _, jf := range files {
		if jf.gen < gen {
			if err := os.Remove(jf.path); err != nil {
				p.log.Warn("cannot remove old journal", "file", jf.path, "err", err)
			}
		}
	}
	p.log.Info("journal compacted", "dir", p.dir, "generation", gen, "bindings", len(bs))
	return nil
}

func (p *persist) compact(st *store, now time.Time) error {
	return p.startGen(st, now)
}

func (p *persist) generation() uint64 {
	p.compMu.Lock()
	defer p.compMu.Unlock()
	return p.gen
}

func (p *persist) close() error {
	if p.journal == nil {
		return nil
	}
	return p.journal.close()
}
