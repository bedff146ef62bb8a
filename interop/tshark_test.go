package interop

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// The tshark test owns 127.0.0.120/29, so its capture filter is one subnet
// and nothing of the other tests leaks into the capture.
const (
	tsharkNet   = "127.0.0.120/29"
	tsharkProxy = "127.0.0.121"
	tsharkReg   = "127.0.0.122"
	tsharkAlice = "127.0.0.123"
	tsharkBob   = "127.0.0.124"
	tsharkProbe = "127.0.0.126" // proves the capture is live, see startCapture
)

// Wireshark (tshark) decodes a capture of a whole call through the proxy —
// two of our phones registering (401), alice calling bob (407, 100, 180,
// 200, ACK, media, BYE), every hop including proxy to registrar — with no
// malformed SIP, SDP or RTP.
func TestTsharkDecodesCall(t *testing.T) {
	needTool(t, "tshark", "tshark")
	t.Parallel()
	// tshark starts slowly (dissector tables) and runs three times here:
	// on a busy 2-core machine that alone passed testTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	pcap := t.TempDir() + "/call.pcapng"
	stop := startCapture(t, ctx, "udp and net "+tsharkNet, pcap, tsharkProbe)

	l := startLab(t, tsharkProxy, tsharkReg)
	bob := l.startPhone(t, ctx, tsharkBob, "bob", 100*time.Millisecond)
	alice := l.startPhone(t, ctx, tsharkAlice, "alice", 0)
	c, _ := confirmedCall(t, ctx, alice, "bob", "alice calling bob")
	hearTone(t, ctx, alice, c.ID(), bob.ToneHz())
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx, uaclient.StateTerminated); err != nil {
		t.Fatalf("hangup: %v (%+v)", err, st)
	}
	stop()

	// Decode SIP on every SIP port of the test (they are random, not 5060)
	// and RTP by its heuristic, as someone opening the file would after
	// "Decode As" / enabling rtp_udp.
	decode := []string{"-r", pcap, "--enable-heuristic", "rtp_udp"}
	for _, ap := range []string{l.proxySIP.String(), l.regSIP.String(), alice.Addr().String(), bob.Addr().String()} {
		port := ap[strings.LastIndex(ap, ":")+1:]
		decode = append(decode, "-d", "udp.port=="+port+",sip")
	}
	fields := func(filter string, fields ...string) []string {
		t.Helper()
		args := append(append([]string{}, decode...), "-Y", filter, "-T", "fields", "-E", "separator=|")
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := exec.CommandContext(ctx, "tshark", args...).Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("tshark -Y %q: %v\n%s", filter, err, stderr)
		}
		var lines []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				lines = append(lines, line)
			}
		}
		return lines
	}

	if bad := fields("_ws.malformed || _ws.expert.severity == error", "frame.number", "_ws.col.Protocol", "_ws.col.Info", "_ws.expert.message"); len(bad) > 0 {
		t.Errorf("tshark finds malformed packets or errors:\n%s", strings.Join(bad, "\n"))
	}

	sip := fields("sip", "ip.src", "ip.dst", "sip.Method", "sip.Status-Code", "sip.CSeq.method")
	if len(sip) == 0 {
		t.Fatal("tshark decoded no SIP in the capture")
	}
	// The ladder, hop by hop: "src>dst METHOD" or "src>dst CODE CSEQ-METHOD".
	seen := map[string]bool{}
	for _, line := range sip {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			t.Fatalf("tshark line %q", line)
		}
		what := f[2]
		if what == "" {
			what = f[3] + " " + f[4]
		}
		seen[f[0]+">"+f[1]+" "+what] = true
	}
	for _, want := range []string{
		tsharkAlice + ">" + tsharkProxy + " REGISTER",
		tsharkProxy + ">" + tsharkReg + " REGISTER",
		tsharkReg + ">" + tsharkProxy + " 401 REGISTER",
		tsharkProxy + ">" + tsharkAlice + " 401 REGISTER",
		tsharkProxy + ">" + tsharkAlice + " 200 REGISTER",
		tsharkAlice + ">" + tsharkProxy + " INVITE",
		tsharkProxy + ">" + tsharkAlice + " 407 INVITE",
		tsharkProxy + ">" + tsharkAlice + " 100 INVITE",
		tsharkProxy + ">" + tsharkBob + " INVITE",
		tsharkBob + ">" + tsharkProxy + " 180 INVITE",
		tsharkBob + ">" + tsharkProxy + " 200 INVITE",
		tsharkProxy + ">" + tsharkAlice + " 200 INVITE",
		tsharkAlice + ">" + tsharkProxy + " ACK",
		tsharkProxy + ">" + tsharkBob + " ACK",
		tsharkAlice + ">" + tsharkProxy + " BYE",
		tsharkProxy + ">" + tsharkBob + " BYE",
		tsharkBob + ">" + tsharkProxy + " 200 BYE",
		tsharkProxy + ">" + tsharkAlice + " 200 BYE",
	} {
		if !seen[want] {
			t.Errorf("tshark did not decode %s", want)
		}
	}
	if t.Failed() {
		t.Logf("decoded SIP:\n%s", strings.Join(sip, "\n"))
	}

	// The SDP inside the INVITE and 200 decodes, and the RTP both ways is
	// PCMU (payload type 0) between the phones.
	if sdp := fields("sdp.media.media == \"audio\"", "sdp.media.format"); len(sdp) < 2 {
		t.Errorf("tshark decoded %d SDP audio descriptions, want the offer and the answer at least", len(sdp))
	}
	rtp := fields("rtp", "ip.src", "ip.dst", "rtp.p_type")
	dirs := map[string]int{}
	for _, line := range rtp {
		dirs[line]++
	}
	for _, want := range []string{tsharkAlice + "|" + tsharkBob + "|0", tsharkBob + "|" + tsharkAlice + "|0"} {
		if dirs[want] < 10 {
			t.Errorf("%d RTP packets %s (src|dst|pt), want a call's worth; all: %v", dirs[want], want, dirs)
		}
	}
}

// startCapture runs tshark on lo with a capture filter and returns a
// function that stops it once everything sent so far is written.
//
// tshark says "Capturing on 'Loopback: lo'" before dumpcap really sees
// packets (the first second of a call went missing that way), so the
// capture counts as started only when a probe datagram sent to probe shows
// up in tshark's live packet list (-P with -w). The probe is UDP to a port
// nobody listens on, with a payload that is neither SIP nor RTP.
func startCapture(t *testing.T, ctx context.Context, filter, file, probe string) (stop func()) {
	t.Helper()
	cmd := exec.Command("tshark", "-i", "lo", "-f", filter, "-w", file, "-P", "-l")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &siptest.LogBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "UDP") {
				once = true
				close(ready)
			}
		}
		done <- cmd.Wait()
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		// Packets just sent are still on their way to the capture socket.
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("tshark: %v\n%s", err, log.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("tshark did not stop on SIGINT")
		}
		if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
			t.Fatalf("no capture written: %v\n%s", err, log.String())
		}
	}
	t.Cleanup(stop)

	pc, err := net.ListenPacket("udp4", probe+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(probe), Port: freePort(t, probe)}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pc.WriteTo([]byte("siplab capture probe"), dst)
		select {
		case <-ready:
			return stop
		case err := <-done:
			done <- err
			t.Fatalf("tshark exited before capturing (capturing on lo needs root or CAP_NET_RAW): %v\n%s", err, log.String())
		case <-ctx.Done():
			t.Fatalf("tshark never captured the probe: %s", log.String())
		case <-tick.C:
		}
	}
}
