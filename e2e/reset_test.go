package e2e

import (
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/uaclient"
)

// labSettings is every node's settings as its status reports them, and
// the state a fresh `up` has: what `siplab reset` must restore.
type labSettings map[string]map[string]string

func runner() *labctl.Runner { return &labctl.Runner{Dir: lab.Root} }

// snapshotSettings reads every daemon's settings through `siplab status
// -json`'s own source (each daemon's status).
func snapshotSettings(t *testing.T, ctx context.Context) labSettings {
	t.Helper()
	out := labSettings{}
	for _, p := range Phones {
		st := phoneStatus(t, ctx, p)
		out[p] = st.Settings
	}
	px := proxyStatus(t, ctx)
	out["proxy"] = map[string]string{}
	for _, n := range []string{"rport", "received", "contact_fixup", "record_route"} {
		out["proxy"][n], _ = px.Settings.Get(n)
	}
	for _, r := range []string{"router-a", "router-b"} {
		st := routerSettings(t, ctx, r)
		out[r] = map[string]string{"preset": st.Preset.Name, "pinhole": st.Pinhole().String(), "alg": st.ALG}
	}
	s := sbcStatus(t, ctx)
	out["sbc"] = s.Settings
	pbx := nodeStatus[b2bua.Status](t, ctx, "pbx", "/b2bua")
	out["pbx"] = map[string]string{}
	for _, n := range b2bua.SettingNames() {
		out["pbx"][n], _ = pbx.Settings.Get(n)
	}
	return out
}

func registrations(t *testing.T, ctx context.Context) map[string][]location.Binding {
	t.Helper()
	var doc struct {
		Registrations []location.Binding `json:"registrations"`
	}
	statusJSON(t, ctx, "registrar", "/registrar", &doc)
	out := map[string][]location.Binding{}
	for _, b := range doc.Registrations {
		out[b.AOR] = append(out[b.AOR], b)
	}
	return out
}

// strayProcesses lists the processes in a container besides its daemon.
func strayProcesses(t *testing.T, ctx context.Context, service string) []string {
	t.Helper()
	ctr, err := lab.Container(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	out, err := lab.Docker(ctx, "top", ctr, "-o", "pid,args")
	if err != nil {
		t.Fatal(err)
	}
	var stray []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.Contains(line, " run ") {
			continue
		}
		stray = append(stray, strings.TrimSpace(line))
	}
	return stray
}

// TestResetRestoresAFreshLab makes every kind of mess the exercises make,
// resets, and checks the lab equals the fresh one it started as, in at
// most 10 s without restarting a container.
func TestResetRestoresAFreshLab(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	// Whatever happens, leave a fresh lab for the next test.
	t.Cleanup(func() {
		if _, err := runner().Reset(context.Background(), nil); err != nil {
			t.Errorf("cleanup reset: %v", err)
		}
	})
	dl := &exercise.DockerLab{R: runner()}
	freshAll := freshSnapshot(t, ctx, runner(), dl)
	fresh := snapshotSettings(t, ctx)
	started := map[string]string{}
	for _, svc := range []string{"alice", "router-a", "proxy", "sbc", "pbx"} {
		out, err := lab.Docker(ctx, "inspect", "-f", "{{.State.StartedAt}}", mustContainer(t, ctx, svc))
		if err != nil {
			t.Fatal(err)
		}
		started[svc] = out
	}

	// The mess. A second binding for alice, as the kernel-ALG step
	// leaves one: her Contact rewritten to the router's public address.
	mustSet := func(node, name, value string) {
		t.Helper()
		bin := map[string]string{"proxy": "/proxy", "router-a": "/natrouter", "router-b": "/natrouter", "sbc": "/sbc", "pbx": "/b2bua"}[node]
		if bin == "" {
			bin = "/uaclient"
		}
		if out, err := lab.Exec(ctx, node, bin, "set", name, value); err != nil {
			t.Fatalf("%s set %s %s: %v %s", node, name, value, err, out)
		}
	}
	mustSet("alice", "contact_addr", "203.0.113.2:5060")
	if err := reRegister(t, ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n := len(registrations(t, ctx)["sip:alice@siplab.test"]); n != 2 {
		t.Fatalf("setup: alice has %d bindings, want 2", n)
	}
	// A call up, a BLF subscription, a stray CLI process waiting forever.
	call := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if call.State != uaclient.StateConfirmed {
		t.Fatalf("setup call: %+v", call)
	}
	if out, err := phoneCmd(t, ctx, "carol", "subscribe", "101", "dialog"); err != nil {
		t.Fatalf("setup subscribe: %v %s", err, out)
	}
	if _, err := lab.Docker(ctx, "exec", "-d", mustContainer(t, ctx, "bob"), "/uaclient", "wait", "unregistered", "-timeout", "10m"); err != nil {
		t.Fatal(err)
	}
	// Settings on every daemon.
	for _, s := range [][3]string{
		{"alice", "codecs", "pcma"}, {"alice", "password", "wrong"}, {"alice", "keepalive_interval", "5s"},
		{"bob", "auto_answer", "0"}, {"bob", "rport", "off"}, {"carol", "keepalive", "off"}, {"carol", "sdp_addr", "local"},
		{"proxy", "rport", "ignore"}, {"proxy", "contact_fixup", "off"},
		{"router-a", "preset", "symmetric"}, {"router-b", "pinhole", "30s"},
		{"sbc", "latching", "off"}, {"sbc", "topology_hiding", "off"},
		{"pbx", "moh", "off"},
	} {
		mustSet(s[0], s[1], s[2])
	}
	// The SBC blocks the password guesser (`siplab attack`).
	sbcNode, err := runner().Node(ctx, "sbc")
	if err != nil {
		t.Fatal(err)
	}
	if err := runner().Attack(ctx, io.Discard, sbcNode, 5060, []string{"register", "-domain", "siplab.test", "-user", "bob",
		"-count", "40", "-rate", "20", "-timeout", "300ms", "-user-agent", "Grandstream GXP2170 1.0.11.3"}); err != nil {
		t.Fatalf("attack: %v", err)
	}
	if len(sbcStatus(t, ctx).Blocked) == 0 {
		t.Fatal("setup: the attack left no block at the SBC")
	}
	if len(strayProcesses(t, ctx, "bob")) == 0 {
		t.Fatal("setup: the stray process in bob's container is not running")
	}
	mess := snapshotSettings(t, ctx)
	if equalLab(mess, fresh) {
		t.Fatal("setup: the mess changed no setting")
	}

	// The reset, as `siplab reset` runs it.
	begin := time.Now()
	rep, err := runner().Reset(ctx, func(line string) { t.Log(line) })
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("reset: %v\n%+v", err, rep)
	}
	t.Logf("reset took %s", took)
	if took > 10*time.Second {
		t.Errorf("reset took %s, want at most 10 s", took)
	}

	// Every setting as on a fresh up.
	after := snapshotSettings(t, ctx)
	for node, want := range fresh {
		for k, v := range want {
			if after[node][k] != v {
				t.Errorf("%s %s = %q after reset, fresh lab had %q", node, k, after[node][k], v)
			}
		}
	}
	// And every fact of the full snapshot (TestExercises' reference).
	all, err := takeSnapshot(ctx, runner(), dl)
	if err != nil {
		t.Fatal(err)
	}
	if d := all.diff(freshAll); d != "" {
		t.Errorf("after reset the lab differs from a fresh one:\n%s", d)
	}
	// One binding per phone, at the address its phone writes now.
	regs := registrations(t, ctx)
	for _, p := range Phones {
		st := phoneStatus(t, ctx, p)
		bs := regs["sip:"+p+"@siplab.test"]
		if len(bs) != 1 || bs[0].ContactURI != st.Registration.Contact {
			t.Errorf("%s: bindings %+v, want exactly its own %s", p, bs, st.Registration.Contact)
		}
		if st.Registration.State != uaclient.RegRegistered || len(st.Calls) != 0 || len(st.Subscriptions) != 0 {
			t.Errorf("%s after reset: registration %s, %d calls, %d subscriptions", p, st.Registration.State, len(st.Calls), len(st.Subscriptions))
		}
	}
	if stray := strayProcesses(t, ctx, "bob"); len(stray) != 0 {
		t.Errorf("stray processes left in bob's container: %v", stray)
	}
	s := sbcStatus(t, ctx)
	if len(s.Blocked) != 0 || len(s.Calls) != 0 {
		t.Errorf("SBC after reset: blocked %+v, %d calls", s.Blocked, len(s.Calls))
	}
	pbx := nodeStatus[b2bua.Status](t, ctx, "pbx", "/b2bua")
	if len(pbx.Calls) != 0 || len(pbx.BLF) != 0 || len(pbx.MWI) != 0 {
		t.Errorf("PBX after reset: %d calls, %d BLF, %d MWI", len(pbx.Calls), len(pbx.BLF), len(pbx.MWI))
	}
	// Nothing was restarted.
	for svc, at := range started {
		out, _ := lab.Docker(ctx, "inspect", "-f", "{{.State.StartedAt}}", mustContainer(t, ctx, svc))
		if out != at {
			t.Errorf("%s was restarted (%s, was %s)", svc, out, at)
		}
	}
	// The capture boundary: what the ladder reads starts after the reset.
	b, ok, err := capture.ReadBoundary(filepath.Join(lab.Root, "captures"))
	if err != nil || !ok || !b.Equal(rep.Boundary) {
		t.Fatalf("capture boundary %v %v %v, want %v", b, ok, err, rep.Boundary)
	}
	paths, _ := filepath.Glob(filepath.Join(lab.Root, "captures", "*.pcapng"))
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tr.SIP {
		if p.Time.Before(rep.Boundary) {
			t.Fatalf("a packet from before the boundary was read: %s %s", p.Time, p.StartLine())
		}
		if p.Header("Call-ID") == call.CallID {
			t.Fatalf("the call from before the reset is still in the captures read: %s", p.StartLine())
		}
	}
	// And calls work again, as on a fresh lab.
	again := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if again.State != uaclient.StateConfirmed {
		t.Fatalf("call after reset: %d %s", again.Code, again.Reason)
	}
	hangup(t, ctx, "alice", again.ID)
}

func mustContainer(t *testing.T, ctx context.Context, svc string) string {
	t.Helper()
	c, err := lab.Container(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equalLab(a, b labSettings) bool {
	keys := func(m labSettings) []string {
		var out []string
		for n, s := range m {
			for k, v := range s {
				out = append(out, n+"/"+k+"="+v)
			}
		}
		sort.Strings(out)
		return out
	}
	return strings.Join(keys(a), "\n") == strings.Join(keys(b), "\n")
}
