package registrar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/sipauth"
)

// registerDirect runs the full authenticated REGISTER exchange through
// Handle (no sockets): the tier for persistence tests, where what matters
// is what reaches the disk.
func registerDirect(t testing.TB, r *Registrar, user, pass, contact string, cseq int, extra ...string) *sip.Response {
	t.Helper()
	build := func(auth string) *sip.Request {
		raw := "REGISTER sip:" + domain + " SIP/2.0\n" +
			"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + strconv.Itoa(cseq) + "-" + user + "\n" +
			"From: <sip:" + user + "@" + domain + ">;tag=t\n" +
			"To: <sip:" + user + "@" + domain + ">\n" +
			"Call-ID: " + user + "-direct\n" +
			"CSeq: " + strconv.Itoa(cseq) + " REGISTER\n" +
			"Max-Forwards: 70\n"
		if contact != "" {
			raw += "Contact: " + contact + "\n"
		}
		for _, h := range extra {
			raw += h + "\n"
		}
		if auth != "" {
			raw += auth + "\n"
		}
		raw += "Content-Length: 0\n\n"
		return parseRequest(t, raw, "192.0.2.10:5060")
	}
	res := r.Handle(context.Background(), build(""))
	if res.StatusCode != sip.StatusUnauthorized {
		return res
	}
	return r.Handle(context.Background(), build(answer(t, res, user, pass, 1)))
}

func TestRestartKeepsBindings(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	cfg := baseConfig(t, clk)
	cfg.DataDir = dir
	r1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Over real sockets, as in the lab.
	p := newPhone(t, serveRegistrar(t, r1), "alice", "secret")
	if res, _ := p.register("Contact: <sip:alice@192.168.1.50:5060>;expires=600", "Contact: <sip:alice@192.168.1.51:5060>"); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	if res := registerDirect(t, r1, "bob", "hunter2", "<sip:bob@192.0.2.7>", 1); res.StatusCode != 200 {
		t.Fatalf("bob: %d", res.StatusCode)
	}
	// A removal must survive too.
	if res := registerDirect(t, r1, "bob", "hunter2", "<sip:bob@192.0.2.7>;expires=0", 2); res.StatusCode != 200 {
		t.Fatalf("bob removal: %d", res.StatusCode)
	}
	before := r1.Bindings()
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute)
	r2 := newRegistrar(t, cfg)
	after := r2.Bindings()
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("before %d bindings, after restart %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ContactURI != b.ContactURI || a.Source != b.Source || !a.Expires.Equal(b.Expires) || a.CallID != b.CallID || a.CSeq != b.CSeq {
			t.Fatalf("binding changed across restart:\n%+v\n%+v", b, a)
		}
	}
	if bs, _ := r2.Lookup(context.Background(), "bob"); len(bs) != 0 {
		t.Fatalf("removed binding came back: %+v", bs)
	}
	// Expired while down: not loaded.
	r2.Close()
	clk.Advance(10 * time.Minute)
	r3 := newRegistrar(t, cfg)
	if bs, _ := r3.Lookup(context.Background(), "alice"); len(bs) != 1 || bs[0].ContactURI != "sip:alice@192.168.1.51:5060" {
		t.Fatalf("after expiry: %+v", bs)
	}
}

func TestCompactionWhileRunning(t *testing.T) {
	clk := newClock()
	cfg := baseConfig(t, clk)
	cfg.DataDir = t.TempDir()
	cfg.MaxContacts = 64
	r := newRegistrar(t, cfg)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 30; n++ {
				c := fmt.Sprintf("<sip:alice@192.0.2.%d:%d>", i+1, 5000+n%8)
				if res := registerDirect(t, r, "alice", "secret", c, i*1000+n+1); res.StatusCode != 200 {
					t.Errorf("%d", res.StatusCode)
					return
				}
			}
		}()
	}
	for k := 0; k < 5; k++ {
		if err := r.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	want := r.Bindings()
	r.Close()
	files, _ := filepath.Glob(filepath.Join(cfg.DataDir, "journal-*"))
	if len(files) != 1 {
		t.Fatalf("journal files %v: old generations not removed", files)
	}
	r2 := newRegistrar(t, cfg)
	if got := r2.Bindings(); len(got) != len(want) || len(want) != 4*8 {
		t.Fatalf("after restart %d bindings, before %d, want 32", len(got), len(want))
	}
}

// TestTornJournal: what a crash can leave at the end of the journal is
// tolerated; damage in the middle is not silently skipped.
func TestTornJournal(t *testing.T) {
	tests := []struct {
		name    string
		mangle  func(data []byte) []byte
		want    int // bindings after restart; -1 = New fails
		wantErr error
	}{
		{"clean", func(d []byte) []byte { return d }, 3, nil},
		{"truncated last line", func(d []byte) []byte { return d[:len(d)-20] }, 2, nil},
		{"last line without newline", func(d []byte) []byte { return d[:len(d)-1] }, 3, nil},
		{"garbage after the end", func(d []byte) []byte { return append(d, "\x00\x00\x00{\"aor\":\ngarbage\n\x00"...) }, 3, nil},
		{"zeroed tail", func(d []byte) []byte { return append(d, make([]byte, 4096)...) }, 3, nil},
		{"bit flip in the middle", func(d []byte) []byte {
			i := strings.Index(string(d), "\n") + 30
			d[i] ^= 0x20
			return d
		}, -1, ErrCorruptJournal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			cfg := baseConfig(t, clk)
			cfg.DataDir = t.TempDir()
			r, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if res := registerDirect(t, r, "alice", "secret", fmt.Sprintf("<sip:alice@192.0.2.%d>", i), i); res.StatusCode != 200 {
					t.Fatalf("%d", res.StatusCode)
				}
			}
			r.Close()
			path := filepath.Join(cfg.DataDir, journalName(r.persist.gen))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(data), "\n") != 3 {
				t.Fatalf("journal has %d lines, want 3", strings.Count(string(data), "\n"))
			}
			if err := os.WriteFile(path, tt.mangle(data), 0o644); err != nil {
				t.Fatal(err)
			}
			r2, err := New(cfg)
			if tt.want < 0 {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			if got := len(r2.Bindings()); got != tt.want {
				t.Fatalf("%d bindings after restart, want %d", got, tt.want)
			}
		})
	}
}

func TestJournalWriteFailureIsNotAcknowledged(t *testing.T) {
	cfg := baseConfig(t, newClock())
	cfg.DataDir = t.TempDir()
	r := newRegistrar(t, cfg)
	// Pull the file out from under the journal: writes now fail.
	j := r.persist.journal
	j.fileMu.Lock()
	j.f.Close()
	j.fileMu.Unlock()
	if res := registerDirect(t, r, "alice", "secret", "<sip:alice@192.0.2.1>", 1); res.StatusCode != sip.StatusInternalServerError {
		t.Fatalf("%d, want 500 when the journal cannot be written", res.StatusCode)
	}
}

// TestCrashLosesNothingAcknowledged kills a registrar process with SIGKILL
// while it is acknowledging REGISTERs, then checks that every binding it
// acknowledged is there after a restart.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "REGISTRAR_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if c, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[c] = true
		}
		if len(acked) >= 300 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("helper acknowledged only %d registrations", len(acked))
	}
	cfg := baseConfig(t, newClock())
	cfg.Now = time.Now
	cfg.DataDir = dir
	r := newRegistrar(t, cfg)
	have := map[string]bool{}
	for _, b := range r.Bindings() {
		have[b.ContactURI] = true
	}
	for c := range acked {
		if !have[c] {
			t.Errorf("acknowledged binding %s lost in the crash", c)
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d bindings after restart", len(acked), len(have))
}

// TestCrashHelper is the process TestCrashLosesNothingAcknowledged kills.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("REGISTRAR_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	users, _ := sipauth.ParseUsers(strings.NewReader(usersFile))
	r, err := New(Config{Domain: domain, Users: users, DataDir: dir, Logger: testLogger(t), MaxContacts: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; ; n++ {
				c := fmt.Sprintf("sip:alice@10.%d.%d.%d", g, n/250, n%250)
				res := registerDirect(t, r, "alice", "secret", "<"+c+">", g*1_000_000+n)
				if res.StatusCode == 200 {
					mu.Lock()
					fmt.Printf("ACK %s\n", c)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

func TestCompactionBySize(t *testing.T) {
	cfg := baseConfig(t, newClock())
	cfg.DataDir = t.TempDir()
	cfg.CompactBytes = 2000 // a few records
	r := newRegistrar(t, cfg)
	gen := r.Status().Generation
	for i := 1; i <= 20; i++ {
		if res := registerDirect(t, r, "alice", "secret", "<sip:alice@192.0.2.1>", i); res.StatusCode != 200 {
			t.Fatalf("%d", res.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Status().Generation == gen {
		if time.Now().After(deadline) {
			t.Fatal("journal grew past CompactBytes without compaction")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseReleasesEverything: Close stops the maintenance and journal
// goroutines and is safe to call twice.
func TestCloseReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := baseConfig(t, newClock())
	cfg.DataDir = t.TempDir()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := registerDirect(t, r, "alice", "secret", "<sip:alice@192.0.2.1>", 1); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if res := registerDirect(t, r, "alice", "secret", "<sip:alice@192.0.2.2>", 2); res.StatusCode != sip.StatusInternalServerError {
		t.Fatalf("REGISTER after Close: %d, want 500", res.StatusCode)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i > 200 {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Over UDP (sipnet's direct path, where a 200 is held rather than waited
// for): no 200 leaves before its record is written and fsync'd — held here
// by keeping the journal's file lock, which its flusher needs — and a
// record that cannot be written gets a 500, which is not kept for
// retransmissions (served again, like every answer but a 2xx).
func TestDirectPathAcknowledgesOnlyDurable(t *testing.T) {
	cfg := baseConfig(t, newClock())
	cfg.DataDir = t.TempDir()
	r := newRegistrar(t, cfg)
	addr := serveRegistrar(t, r)
	p := newRawPhone(t, addr, "alice", "secret")
	chal := p.exchange(p.message(1, ""))
	if chal.StatusCode != sip.StatusUnauthorized {
		t.Fatalf("first REGISTER: %d", chal.StatusCode)
	}
	j := r.persist.journal
	j.fileMu.Lock()
	msg := p.message(2, answer(t, chal, "alice", "secret", 1))
	if _, err := p.conn.WriteToUDP(msg, p.registrar); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := p.conn.Read(buf); err == nil {
		j.fileMu.Unlock()
		t.Fatalf("answered before the journal was written: %s", buf[:n])
	}
	if st := r.Status(); st.Direct.Serving != 1 || st.Transactions != 1 {
		j.fileMu.Unlock()
		t.Fatalf("held REGISTER: %+v, transactions %d", st.Direct, st.Transactions)
	}
	j.fileMu.Unlock()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := p.conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
		t.Fatalf("after the journal was written: %q %v", buf[:n], err)
	}
	if raw, err := os.ReadFile(filepath.Join(cfg.DataDir, journalName(r.persist.generation()))); err != nil || !strings.Contains(string(raw), "alice") {
		t.Fatalf("journal after the 200: %q %v", raw, err)
	}

	// Pull the file out from under the journal: writes now fail.
	j.fileMu.Lock()
	j.f.Close()
	j.fileMu.Unlock()
	failed := p.message(3, answer(t, chal, "alice", "secret", 2))
	if res := p.exchange(failed); res.StatusCode != sip.StatusInternalServerError {
		t.Fatalf("%d, want 500 when the journal cannot be written", res.StatusCode)
	}
	// Served again, not replayed: the nonce count is used, so a fresh
	// (stale) challenge.
	if res := p.exchange(failed); res.StatusCode != sip.StatusUnauthorized {
		t.Fatalf("retransmission: %d, want 401 (served again, count already used)", res.StatusCode)
	}
	// A request stops counting as served just after its answer is sent.
	deadline := time.Now().Add(5 * time.Second)
	for st := r.Status(); st.Direct.Kept != 1 || st.Direct.Replayed != 0 || st.Direct.Serving != 0 || st.Transactions != 0; st = r.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("after the 500s: %+v, transactions %d", st.Direct, st.Transactions)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
