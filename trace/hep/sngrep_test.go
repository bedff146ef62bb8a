package hep

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSngrepDecodesOurHEP points a real HEP collector at the client:
// sngrep listening for HEP (-L) writes what it decoded to a pcap, and
// tshark reads the SIP back with the addresses we sent. It fails without
// sngrep and tshark (apt-get install sngrep tshark).
func TestSngrepDecodesOurHEP(t *testing.T) {
	for _, tool := range []string{"sngrep", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s: %v", tool, err)
		}
	}
	// A free port for sngrep to listen on.
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	collector := probe.LocalAddr().String()
	probe.Close()

	out := filepath.Join(t.TempDir(), "hep.pcap")
	cmd := exec.Command("sngrep", "-N", "-q", "-L", "udp:"+collector, "-O", out)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
	}
	defer stop()
	time.Sleep(time.Second) // let sngrep bind

	c, err := New(Config{Collector: collector, CaptureID: 42})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, dst := netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060")
	for i := 0; i < 3; i++ {
		if err := c.Send(Packet{Src: src, Dst: dst, IPProto: 17, Time: time.Now(), Type: TypeSIP, Payload: []byte(register)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stop()

	b, err := exec.Command("tshark", "-r", out, "-Y", "sip", "-T", "fields",
		"-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-e", "sip.Call-ID").Output()
	if err != nil {
		t.Fatalf("tshark on sngrep's output: %v\nsngrep: %s", err, logs.String())
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("sngrep decoded %d SIP messages from HEP, want 3:\n%s\nsngrep: %s", len(lines), b, logs.String())
	}
	for _, l := range lines {
		if l != "192.168.1.50\t5060\t203.0.113.10\t5060\tabc" {
			t.Errorf("sngrep saw %q", l)
		}
	}
}
