package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/natrouter"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// statusJSON decodes "<binary> status -json" run in service's container
// into v: every daemon's status is read this way.
func statusJSON(t *testing.T, ctx context.Context, service, binary string, v any) {
	t.Helper()
	out, err := lab.Exec(ctx, service, binary, "status", "-json")
	if err != nil {
		t.Fatalf("%s status: %v %s", service, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s status: %v\n%s", service, err, out)
	}
}

// nodeStatus is a daemon's status document as its Go type.
func nodeStatus[T any](t *testing.T, ctx context.Context, service, binary string) T {
	t.Helper()
	var st T
	statusJSON(t, ctx, service, binary, &st)
	return st
}

func routerStatus(t *testing.T, ctx context.Context, router string) natrouter.Status {
	t.Helper()
	return nodeStatus[natrouter.Status](t, ctx, router, "/natrouter")
}

func setRouter(t *testing.T, ctx context.Context, router string, args ...string) {
	t.Helper()
	if out, err := lab.Exec(ctx, router, append([]string{"/natrouter", "set"}, args...)...); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("%s: natrouter set %s: %s", router, strings.Join(args, " "), strings.TrimSpace(out))
	}
}

// startEcho runs a probe echo server on the internet segment.
func startEcho(t *testing.T, ctx context.Context, name string, ip netip.Addr) {
	t.Helper()
	if _, err := lab.RunExtra(ctx, true, name, "internet", ip.String(), nil,
		"/natrouter", "probe", "echo", "-listen", ip.String()+":7", "-alt-port", "8"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = lab.Docker(context.Background(), "rm", "-f", "siplab-e2e-"+name) })
	time.Sleep(300 * time.Millisecond) // let it bind before the first probe
}

// probeFrom runs a one-shot LAN host that routes via its site router and
// probes dst. ok is false when no answer came back.
func probeFrom(t *testing.T, ctx context.Context, name, network string, src netip.AddrPort, gateway string, dst netip.AddrPort) (natrouter.ProbeResult, bool) {
	t.Helper()
	return probeFromWait(t, ctx, name, network, src, gateway, dst, 1500*time.Millisecond)
}

func probeFromWait(t *testing.T, ctx context.Context, name, network string, src netip.AddrPort, gateway string, dst netip.AddrPort, wait time.Duration) (natrouter.ProbeResult, bool) {
	t.Helper()
	cmd := []string{"/natrouter", "probe", "udp", "-json", "-wait", wait.String(),
		"-from", src.String(), "-to", dst.String()}
	if gateway != "" {
		cmd = append(cmd, "-gateway", gateway)
	}
	out, err := lab.RunExtra(ctx, false, name, network, src.Addr().String(), []string{"--cap-add", "NET_ADMIN"}, cmd...)
	var res natrouter.ProbeResult
	// stdout carries the JSON even when the exit code says "no answer".
	start := strings.Index(out, "{")
	if start < 0 {
		t.Fatalf("probe %s -> %s: no JSON: %v\n%s", src, dst, err, out)
	}
	if jerr := json.NewDecoder(strings.NewReader(out[start:])).Decode(&res); jerr != nil {
		t.Fatalf("probe output: %v\n%s", jerr, out)
	}
	return res, err == nil && len(res.Replies) > 0
}

func mainSeen(t *testing.T, res natrouter.ProbeResult) netip.AddrPort {
	t.Helper()
	for _, r := range res.Replies {
		if r.Via == "main" {
			return r.Seen
		}
	}
	t.Fatalf("no answer from %s: %+v", res.Remote, res)
	return netip.AddrPort{}
}

func TestImageBuiltOfflineFromPrebuiltStage(t *testing.T) {
	if !strings.Contains(buildLog, "FROM scratch AS prebuilt") || !strings.Contains(buildLog, "Successfully tagged siplab:latest") {
		t.Fatalf("build did not go through the prebuilt stage:\n%s", buildLog)
	}
	for _, bad := range []string{"golang", "Pulling", "go build"} {
		if strings.Contains(buildLog, bad) {
			t.Errorf("offline build touched %q:\n%s", bad, buildLog)
		}
	}
}

func TestRoutersFindTheirInterfacesAndInstallNAT(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	for _, tc := range []struct{ router, lan, wan string }{
		{"router-a", "192.168.1.1/24", "203.0.113.2/24"},
		{"router-b", "192.168.2.1/24", "203.0.113.3/24"},
		{"router-w", "192.168.9.254/24", "203.0.113.9/24"},
	} {
		st := routerStatus(t, ctx, tc.router)
		if st.LAN.Address.String() != tc.lan || st.WAN.Address.String() != tc.wan {
			t.Errorf("%s: lan %+v wan %+v", tc.router, st.LAN, st.WAN)
		}
		if st.Preset.Name != natrouter.DefaultPreset || st.Pinhole() != natrouter.DefaultPinhole || st.ALG != "off" {
			t.Errorf("%s: settings %s/%s/%s", tc.router, st.Preset.Name, st.Pinhole(), st.ALG)
		}
		// IPv6 is off in the lab: no link-local noise on any bridge.
		id, err := lab.Container(ctx, tc.router)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := lab.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", id)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, "nsenter", "-t", strings.TrimSpace(pid), "-n", "ip", "-6", "-o", "addr").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter: %v\n%s", err, out)
		}
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s has IPv6 addresses:\n%s", tc.router, out)
		}
	}
}

func TestNATFromLANPortRestrictedThenSymmetric(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	echo1, echo2 := netip.MustParseAddr("203.0.113.99"), netip.MustParseAddr("203.0.113.98")
	startEcho(t, ctx, "echo1", echo1)
	startEcho(t, ctx, "echo2", echo2)
	wanA := netip.MustParseAddr("203.0.113.2")

	src := netip.MustParseAddrPort("192.168.1.60:40000")
	r1, ok := probeFrom(t, ctx, "probe-a1", "site-a", src, "192.168.1.1", netip.AddrPortFrom(echo1, 7))
	if !ok {
		t.Fatalf("no answer through router-a: %+v", r1)
	}
	r2, _ := probeFrom(t, ctx, "probe-a2", "site-a", src, "192.168.1.1", netip.AddrPortFrom(echo2, 7))
	s1, s2 := mainSeen(t, r1), mainSeen(t, r2)
	if s1.Addr() != wanA || s1 != s2 {
		t.Fatalf("port-restricted: echo1 saw %s, echo2 saw %s; want the same %s:port", s1, s2, wanA)
	}
	for _, r := range append(r1.Replies, r2.Replies...) {
		if r.Via == "alt" {
			t.Errorf("port-restricted filtering let in an answer from another port: %+v", r)
		}
	}
	st := routerStatus(t, ctx, "router-a")
	found := 0
	for _, m := range st.Mappings {
		if m.Inside == src && m.Outside == s1 && m.Translated {
			found++
		}
	}
	if found != 2 {
		t.Errorf("router-a status shows %d mappings for %s -> %s, want 2: %+v", found, src, s1, st.Mappings)
	}

	setRouter(t, ctx, "router-a", "preset", "symmetric")
	t.Cleanup(func() { setRouter(t, context.Background(), "router-a", "preset", natrouter.DefaultPreset) })
	src = netip.MustParseAddrPort("192.168.1.61:40001")
	r1, _ = probeFrom(t, ctx, "probe-a3", "site-a", src, "192.168.1.1", netip.AddrPortFrom(echo1, 7))
	r2, _ = probeFrom(t, ctx, "probe-a4", "site-a", src, "192.168.1.1", netip.AddrPortFrom(echo2, 7))
	s1, s2 = mainSeen(t, r1), mainSeen(t, r2)
	if s1.Addr() != wanA || s2.Addr() != wanA || s1.Port() == s2.Port() {
		t.Fatalf("symmetric: echo1 saw %s, echo2 saw %s; want different ports on %s", s1, s2, wanA)
	}
}

func TestPinholeTimeoutLive(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	echo := netip.MustParseAddr("203.0.113.97")
	startEcho(t, ctx, "echo3", echo)
	// Long enough to read the status after a docker run round trip, short
	// enough to watch it expire.
	const pinhole = 8 * time.Second
	// bob's and carol's signalling mappings (CRLF every 20 s) lapse during
	// the 8 s pinhole; whoever sends first afterwards gets public port 5060
	// back, so both register anew once the pinhole is restored (cleanups
	// run last-registered first).
	reRegisterAtEnd(t, "bob", "carol")
	setRouter(t, ctx, "router-b", "pinhole", pinhole.String())
	t.Cleanup(func() { setRouter(t, context.Background(), "router-b", "pinhole", natrouter.DefaultPinhole.String()) })

	src := netip.MustParseAddrPort("192.168.2.60:40000")
	if r, ok := probeFromWait(t, ctx, "probe-b1", "site-b", src, "192.168.2.1", netip.AddrPortFrom(echo, 7), 300*time.Millisecond); !ok {
		t.Fatalf("no answer through router-b: %+v", r)
	}
	probed := time.Now()
	mine := func() []natrouter.Mapping {
		var out []natrouter.Mapping
		for _, m := range routerStatus(t, ctx, "router-b").Mappings {
			if m.Inside == src {
				out = append(out, m)
			}
		}
		return out
	}
	if m := mine(); len(m) != 1 || m[0].ExpiresInSeconds > uint32(pinhole/time.Second) {
		t.Fatalf("want one mapping expiring within %s (read %s after the probe), got %+v", pinhole, time.Since(probed).Round(time.Millisecond), m)
	}
	deadline := probed.Add(pinhole + 6*time.Second)
	for len(mine()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("mapping still open %s after the last packet with a %s pinhole", time.Since(probed).Round(time.Second), pinhole)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if gone := time.Since(probed); gone < pinhole-2*time.Second {
		t.Errorf("mapping vanished after %s, before the %s pinhole", gone.Round(time.Millisecond), pinhole)
	}
}

// vethNamespace makes namespace ns whose one interface nsIf (address
// nsAddr, default route gateway) is the peer of hostIf on the host; hostUp
// is the ip(8) command that attaches hostIf (an address, or a bridge port)
// before it comes up. Both go when the test ends.
func vethNamespace(t *testing.T, ctx context.Context, ns, hostIf, nsIf, nsAddr, gateway string, hostUp []string) {
	t.Helper()
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run() // a leftover from an aborted run
	_ = exec.Command("ip", "link", "del", hostIf).Run()
	sh("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh("link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	sh(hostUp...)
	sh("link", "set", hostIf, "up")
	sh("netns", "exec", ns, "ip", "link", "set", "lo", "up")
	sh("netns", "exec", ns, "ip", "addr", "add", nsAddr, "dev", nsIf)
	sh("netns", "exec", ns, "ip", "link", "set", nsIf, "up")
	sh("netns", "exec", ns, "ip", "route", "add", "default", "via", gateway)
}

// TestNothingLeaksOutOfTheHost puts a listener in a namespace the host can
// route to (198.51.100.1 via a veth) and checks that no lab container can
// reach it, with or without its site router, while the host itself can.
func TestNothingLeaksOutOfTheHost(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	const ns = "siplab-leak"
	leakDst := netip.MustParseAddrPort("198.51.100.1:9")
	// The host end is the listener's gateway: the host routes to it.
	vethNamespace(t, ctx, ns, "siplab-lk0", "siplab-lk1", "198.51.100.1/24", "198.51.100.254",
		[]string{"addr", "add", "198.51.100.254/24", "dev", "siplab-lk0"})

	bin := filepath.Join(lab.Root, "bin", "natrouter")
	echo := exec.Command("ip", "netns", "exec", ns, bin, "probe", "echo", "-listen", leakDst.String())
	var logs siptest.LogBuffer
	echo.Stdout, echo.Stderr = &logs, &logs
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = echo.Process.Kill(); _ = echo.Wait() })
	time.Sleep(300 * time.Millisecond)

	// Positive control: the host reaches the listener, so silence below
	// means the lab cannot, not that the listener is deaf.
	out, err := exec.CommandContext(ctx, bin, "probe", "udp", "-to", leakDst.String(), "-wait", "1s").CombinedOutput()
	if err != nil {
		t.Fatalf("host cannot reach the leak listener (control failed): %v\n%s", err, out)
	}

	attempts := []struct {
		name, network, src, gateway string
	}{
		{"leak-via-router", "site-a", "192.168.1.70:40000", "192.168.1.1"},
		{"leak-docker-gw", "site-a", "192.168.1.71:40000", ""}, // Docker's default route (.254, unused)
		{"leak-internet", "internet", "203.0.113.70:40000", ""},
		// The browser's site: its bridge has a host address, but behind
		// router-w (the browser's way out) nothing leaves the host either.
		{"leak-via-router-w", "browser", "192.168.9.70:40000", "192.168.9.254"},
	}
	for _, a := range attempts {
		if res, ok := probeFrom(t, ctx, a.name, a.network, netip.MustParseAddrPort(a.src), a.gateway, leakDst); ok {
			t.Errorf("%s: a lab container reached %s through the host: %+v", a.name, leakDst, res)
		}
	}
	// From the routers themselves: router-w's LAN bridge is the host's, so
	// only its -gateway keeps its own packets off the host.
	for _, r := range []string{"router-a", "router-w"} {
		if out, err := lab.Exec(ctx, r, "/natrouter", "probe", "udp", "-to", leakDst.String(), "-wait", "1s"); err == nil {
			t.Errorf("%s reached %s through the host:\n%s", r, leakDst, out)
		}
	}
	time.Sleep(500 * time.Millisecond)
	seen := strings.Count(logs.String(), "msg=probe")
	if seen != 1 {
		t.Errorf("leak listener saw %d probes, want only the host's control probe:\n%s", seen, logs.String())
	}
}

// TestConePresetsInContainers checks that the cone presets' dynamic maps and
// inbound DNAT work in the routers' containers too: the echo's answer from
// its second port gets in.
func TestConePresetsInContainers(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	echo := netip.MustParseAddr("203.0.113.96")
	startEcho(t, ctx, "echo4", echo)
	t.Cleanup(func() { setRouter(t, context.Background(), "router-a", "preset", natrouter.DefaultPreset) })
	for i, preset := range []string{"restricted-cone", "full-cone"} {
		setRouter(t, ctx, "router-a", "preset", preset)
		src := netip.AddrPortFrom(netip.MustParseAddr("192.168.1.62"), uint16(41000+i))
		res, ok := probeFrom(t, ctx, "probe-cone", "site-a", src, "192.168.1.1", netip.AddrPortFrom(echo, 7))
		if !ok {
			t.Fatalf("%s: no answer: %+v", preset, res)
		}
		var alt bool
		for _, r := range res.Replies {
			alt = alt || r.Via == "alt"
		}
		if !alt {
			t.Errorf("%s: the answer from the echo's other port was filtered: %+v", preset, res.Replies)
		}
	}
}
