package e2e

// Capture in the real lab: each router writes ./captures/<router>.pcapng on
// the host with its LAN and WAN sides as named pcapng interfaces. tshark
// and sngrep must read the file; the same REGISTER must show up before NAT
// (private address, router-x/lan) and after it (public address,
// router-x/wan).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/uaclient"
)

type capSite struct {
	router, phone, private, public string
}

var capSites = []capSite{
	{"router-a", "alice", "192.168.1.50", "203.0.113.2"},
	{"router-b", "bob", "192.168.2.50", "203.0.113.3"},
}

const capProxy = "203.0.113.10"

// capMalformed: dissector failures and error-level expert items.
const capMalformed = "(_ws.malformed || _ws.expert.severity == 0x00800000)"

func capFile(router string) string {
	return capture.FileName(filepath.Join(lab.Root, "captures"), router)
}

func capTshark(t *testing.T, ctx context.Context, args ...string) []string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "tshark", args...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// capSince is a display filter for frames captured after t (tests before
// this one may have broken SIP on purpose, e.g. the broken ALG).
func capSince(t time.Time) string {
	return "frame.time_epoch >= " + strconv.FormatFloat(float64(t.UnixNano())/1e9-0.5, 'f', 3, 64)
}

func capWaitFile(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no capture file %s: is the router run with -capture-dir /captures and ./captures mounted?", path)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestCaptureRoutersSeeRegisterBeforeAndAfterNAT(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	for _, tool := range []string{"tshark", "sngrep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (apt-get install %s): %v", tool, tool, err)
		}
	}
	start := time.Now()
	for _, s := range capSites {
		capWaitFile(t, ctx, capFile(s.router))
		// A fresh REGISTER through the NAT, inside this test's window.
		if out, err := lab.Exec(ctx, s.phone, "/uaclient", "register", "-timeout", "40s"); err != nil {
			t.Fatalf("%s register: %v\n%s", s.phone, err, out)
		}
	}
	time.Sleep(time.Second) // > the capture's flush interval

	for _, s := range capSites {
		file := capFile(s.router)
		since := capSince(start)

		// The pcapng interfaces carry the capture points' names.
		names := map[string]bool{}
		for _, l := range capTshark(t, ctx, "-r", file, "-T", "fields", "-e", "frame.interface_name") {
			names[l] = true
		}
		if len(names) != 2 || !names[s.router+"/lan"] || !names[s.router+"/wan"] {
			t.Errorf("%s: interface names in the file: %v", s.router, names)
		}

		// Frames are in time order (Wireshark lists them in file order):
		// the LAN copy of an outgoing packet comes before its WAN copy.
		prev := 0.0
		for i, l := range capTshark(t, ctx, "-r", file, "-T", "fields", "-e", "frame.time_epoch") {
			ts, err := strconv.ParseFloat(l, 64)
			if err != nil {
				t.Fatalf("frame.time_epoch %q: %v", l, err)
			}
			if ts < prev {
				t.Errorf("%s: frame %d (%f) is older than the frame before it (%f)", s.router, i+1, ts, prev)
				break
			}
			prev = ts
		}

		// Every REGISTER and its answers, with where they were seen.
		type key struct{ callID, cseq string }
		seen := map[key]map[string]bool{}
		fields := []string{"-r", file, "-Y", since + ` && sip.CSeq.method == "REGISTER"`, "-T", "fields",
			"-E", "separator=|", "-e", "frame.interface_name", "-e", "ip.src", "-e", "ip.dst",
			"-e", "sip.Call-ID", "-e", "sip.CSeq.seq", "-e", "sip.Method", "-e", "sip.Status-Code"}
		lines := capTshark(t, ctx, fields...)
		for _, l := range lines {
			f := strings.Split(l, "|")
			if len(f) != 7 {
				t.Fatalf("tshark line %q", l)
			}
			k := key{f[3], f[4]}
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			what := f[5]
			if what == "" {
				what = f[6]
			}
			seen[k][fmt.Sprintf("%s %s>%s %s", f[0], f[1], f[2], what)] = true
		}
		want := []string{
			fmt.Sprintf("%s/lan %s>%s REGISTER", s.router, s.private, capProxy),
			fmt.Sprintf("%s/wan %s>%s REGISTER", s.router, s.public, capProxy),
			fmt.Sprintf("%s/wan %s>%s 200", s.router, capProxy, s.public),
			fmt.Sprintf("%s/lan %s>%s 200", s.router, capProxy, s.private),
		}
		found := false
		for _, got := range seen {
			all := true
			for _, w := range want {
				all = all && got[w]
			}
			found = found || all
		}
		if !found {
			t.Errorf("%s: no REGISTER transaction seen on both sides of NAT (want %q); tshark saw:\n%s",
				s.router, want, strings.Join(lines, "\n"))
		}

		// tshark decodes every SIP message of this window cleanly.
		if bad := capTshark(t, ctx, "-r", file, "-Y", since+" && "+capMalformed); len(bad) != 0 {
			t.Errorf("%s: tshark flags malformed packets:\n%s", s.router, strings.Join(bad, "\n"))
		}

		// Our reader agrees with tshark.
		tr, err := capture.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lanReg, wanReg := false, false
		for _, m := range tr.SIP {
			if m.Time.Before(start) || !strings.HasPrefix(m.StartLine(), "REGISTER ") {
				continue
			}
			lanReg = lanReg || m.Iface == s.router+"/lan" && m.Src.Addr().String() == s.private
			wanReg = wanReg || m.Iface == s.router+"/wan" && m.Src.Addr().String() == s.public
		}
		if !lanReg || !wanReg {
			t.Errorf("%s: capture.ReadFile: REGISTER on lan from %s: %v, on wan from %s: %v", s.router, s.private, lanReg, s.public, wanReg)
		}

		// sngrep opens the file and finds the registrations from both the
		// private and the public address.
		capSngrep(t, ctx, file, s.private, s.public)
	}
}

// sngrepPcap runs sngrep without its UI on the file and returns the pcap
// it writes of what it parsed.
func sngrepPcap(t *testing.T, ctx context.Context, file string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sngrep.pcap")
	cmd := exec.CommandContext(ctx, "sngrep", "-N", "-q", "-I", file, "-O", out)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sngrep -I %s: %v\n%s", file, err, b)
	}
	return out
}

// capSngrep runs sngrep without its UI on the file and checks, via the pcap
// it writes of what it parsed, that it saw REGISTERs from each address.
func capSngrep(t *testing.T, ctx context.Context, file string, froms ...string) {
	t.Helper()
	out := sngrepPcap(t, ctx, file)
	srcs := map[string]bool{}
	for _, l := range capTshark(t, ctx, "-r", out, "-Y", `sip.Method == "REGISTER"`, "-T", "fields", "-e", "ip.src") {
		srcs[l] = true
	}
	for _, f := range froms {
		if !srcs[f] {
			t.Errorf("sngrep parsed no REGISTER from %s in %s (saw %v)", f, file, srcs)
		}
	}
}

func TestCaptureRouterRecordsRTPOfACall(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	file := capFile("router-a")
	capWaitFile(t, ctx, file)
	start := time.Now()
	out, err := lab.Exec(ctx, "alice", "/uaclient", "call", "-json", "bob")
	if err != nil {
		t.Fatalf("alice call bob: %v\n%s", err, out)
	}
	var call uaclient.CallStatus
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &call); err != nil {
		t.Fatalf("call output: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = lab.Exec(context.Background(), "alice", "/uaclient", "hangup", call.ID) })
	// bob answers after 1 s (-auto-answer); let a few seconds of audio flow.
	time.Sleep(5 * time.Second)
	if out, err := lab.Exec(ctx, "alice", "/uaclient", "hangup", call.ID); err != nil {
		t.Logf("hangup: %v %s", err, out)
	}
	time.Sleep(time.Second)

	// tshark, told that alice's media port carries RTP, sees it on both
	// sides of router-a.
	lines := capTshark(t, ctx, "-r", file, "-d", "udp.port==16000,rtp",
		"-Y", capSince(start)+" && rtp", "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "ip.src", "-e", "ip.dst")
	count := map[string]int{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) == 3 {
			count[f[0]+" "+f[1]+">"+f[2]]++
		}
	}
	lanOut, wanOut := 0, 0
	for k, n := range count {
		if strings.HasPrefix(k, "router-a/lan 192.168.1.50>") {
			lanOut += n
		}
		if strings.HasPrefix(k, "router-a/wan 203.0.113.2>") {
			wanOut += n
		}
	}
	// 20 ms packetisation: several seconds of audio is well over 50.
	if lanOut < 50 || wanOut < 50 {
		t.Errorf("RTP from alice: %d packets on lan, %d on wan; want both >= 50 (seen: %v)", lanOut, wanOut, count)
	}
	if bad := capTshark(t, ctx, "-r", file, "-Y", capSince(start)+" && "+capMalformed); len(bad) != 0 {
		t.Errorf("tshark flags malformed packets:\n%s", strings.Join(bad, "\n"))
	}

	// The reader finds the call's INVITE and RTP without port hints.
	tr, err := capture.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	invites := map[string]bool{}
	for _, m := range tr.SIP {
		if m.Time.After(start.Add(-time.Second)) && strings.HasPrefix(m.StartLine(), "INVITE ") && m.Header("Call-ID") == call.CallID {
			invites[m.Iface] = true
		}
	}
	if !invites["router-a/lan"] || !invites["router-a/wan"] {
		t.Errorf("INVITE %s seen on %v, want router-a/lan and router-a/wan", call.CallID, invites)
	}
	rtp := map[string]int{}
	for _, p := range tr.RTP {
		if p.Kind == capture.KindRTP && p.Time.After(start) {
			rtp[p.Iface]++
		}
	}
	if rtp["router-a/lan"] < 100 || rtp["router-a/wan"] < 100 {
		t.Errorf("capture.ReadFile RTP per side: %v (want both directions on both sides)", rtp)
	}
}

// capPoints are the capture points beyond the routers: the platform's edge
// (proxy, PBX) and the phones, each node's file with its named sides.
var capPoints = []struct {
	node  string
	sides []string
}{
	{"proxy", []string{"proxy/internet", "proxy/core"}},
	{"pbx", []string{"pbx/core", "pbx/internet"}},
	{"alice", []string{"alice/lan"}},
	{"bob", []string{"bob/lan"}},
	{"carol", []string{"carol/lan"}},
}

// capCall places a call from alice, lets audio flow, hangs up, and returns
// its Call-ID.
func capCall(t *testing.T, ctx context.Context, target string) string {
	t.Helper()
	out, err := lab.Exec(ctx, "alice", "/uaclient", "call", "-json", target)
	if err != nil {
		t.Fatalf("alice call %s: %v\n%s", target, err, out)
	}
	var call uaclient.CallStatus
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &call); err != nil {
		t.Fatalf("call output: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = lab.Exec(context.Background(), "alice", "/uaclient", "hangup", call.ID) })
	time.Sleep(4 * time.Second) // answered after 1 s (-auto-answer), then audio
	if out, err := lab.Exec(ctx, "alice", "/uaclient", "hangup", call.ID); err != nil {
		t.Logf("hangup: %v %s", err, out)
	}
	return call.CallID
}

// After a direct call and a call through the PBX, every new capture point
// has its file with its named sides; tshark decodes everything in it
// without a malformed packet, including the SIP the phone and the proxy
// saw; sngrep opens it; the files respect their size bound; and the ladder
// of a call read from all the files has proxy and phone columns, each
// packet once with every point that saw it.
func TestCaptureEveryPointAfterACall(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	for _, tool := range []string{"tshark", "sngrep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (apt-get install %s): %v", tool, tool, err)
		}
	}
	for _, p := range capPoints {
		capWaitFile(t, ctx, capFile(p.node))
	}
	start := time.Now()
	direct := capCall(t, ctx, "bob")
	viaPBX := capCall(t, ctx, "101@pbx.siplab.test") // dial plan: 101 rings bob
	time.Sleep(time.Second)                          // > the capture's flush interval

	since := capSince(start)
	dir := filepath.Join(lab.Root, "captures")
	for _, p := range capPoints {
		file := capFile(p.node)
		names := map[string]bool{}
		for _, l := range capTshark(t, ctx, "-r", file, "-Y", since, "-T", "fields", "-e", "frame.interface_name") {
			names[l] = true
		}
		want := p.sides
		if p.node == "carol" {
			want = nil // not in either call: only her keep-alives, maybe
		}
		for _, side := range want {
			if !names[side] {
				t.Errorf("%s: no frame on %s since the calls (interfaces seen: %v)", p.node, side, names)
			}
		}
		for n := range names {
			if !strings.HasPrefix(n, p.node+"/") {
				t.Errorf("%s: frame on interface %q, want only %s/<side>", p.node, n, p.node)
			}
		}
		if bad := capTshark(t, ctx, "-r", file, "-Y", since+" && "+capMalformed); len(bad) != 0 {
			t.Errorf("%s: tshark flags malformed packets:\n%s", p.node, strings.Join(bad, "\n"))
		}
		// The SIP each point must have decoded: every node but carol was
		// on one of the calls' signalling paths.
		sip := capTshark(t, ctx, "-r", file, "-Y", since+" && sip", "-T", "fields", "-e", "sip.Call-ID")
		if p.node != "carol" && len(sip) == 0 {
			t.Errorf("%s: tshark decoded no SIP since the calls", p.node)
		}
		if p.node == "alice" || p.node == "proxy" {
			ids := map[string]bool{}
			for _, id := range sip {
				ids[id] = true
			}
			if !ids[direct] || !ids[viaPBX] {
				t.Errorf("%s: SIP of the calls %s and %s not both decoded (Call-IDs: %v)", p.node, direct, viaPBX, ids)
			}
		}
		if p.node != "carol" {
			capSngrepSIP(t, ctx, file)
		}
		// Bounded like the routers: -capture-max-bytes 16 MiB, 4 files.
		files, err := capture.Files(dir, p.node)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 4 {
			t.Errorf("%s: %d capture files, the bound is 4: %v", p.node, len(files), files)
		}
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Size() > 16<<20 {
				t.Errorf("%s is %d bytes, over the 16 MiB bound", f, st.Size())
			}
		}
	}

	// The ladder of the direct call, from every file in the folder.
	bin := filepath.Join(t.TempDir(), "siplab")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/siplab")
	build.Dir = lab.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/siplab: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		call    string
		columns []string
		points  []string
	}{
		// Columns in path order; the proxy, crossed before and after the
		// PBX, has a column per crossing.
		{direct, []string{"alice", "router-a", "proxy", "router-b", "bob"}, []string{"(+alice/lan)", "(+proxy/internet)", "(+bob/lan)"}},
		{viaPBX, []string{"alice", "router-a", "proxy", "pbx", "proxy", "router-b", "bob"}, []string{"(+alice/lan)", "(+pbx/core)", "(+bob/lan)"}},
	} {
		out, err := exec.CommandContext(ctx, bin, "ladder", "-dir", dir, tc.call).CombinedOutput()
		if err != nil {
			t.Fatalf("siplab ladder %s: %v\n%s", tc.call, err, out)
		}
		lines := strings.Split(string(out), "\n")
		header := ""
		for i, l := range lines {
			if strings.TrimSpace(l) == "" && i+1 < len(lines) {
				header = lines[i+1] // the column titles follow the summary's blank line
				break
			}
		}
		titles := strings.Fields(header)
		if strings.Join(titles, " ") != strings.Join(tc.columns, " ") {
			t.Errorf("ladder %s: columns %v, want %v", tc.call, titles, tc.columns)
		}
		for _, p := range tc.points {
			if !strings.Contains(string(out), p) {
				t.Errorf("ladder %s: no message also seen at %s\n%s", tc.call, p, out)
			}
		}
	}
}

// capSngrepSIP runs sngrep without its UI on the file and checks, via the
// pcap it writes of what it parsed, that it found SIP in it.
func capSngrepSIP(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	out := sngrepPcap(t, ctx, file)
	if n := len(capTshark(t, ctx, "-r", out, "-Y", "sip")); n == 0 {
		t.Errorf("sngrep parsed no SIP in %s", file)
	}
}
