package carriercli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/internal/cli/clitest"
	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// 127.0.40.x is the carrier's loopback block (carrier/ uses .5/.40/.66).
const (
	cliCarrierIP = "127.0.40.41"
	cliSBCIP     = "127.0.40.6"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	rc := cli.Run(args, &out, &errb)
	return rc, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	run := func(extra ...string) []string {
		return append([]string{"run", "-ctl", sock, "-sip", cliCarrierIP + ":0", "-peer", cliSBCIP + ":5060"}, extra...)
	}
	clitest.Refuses(t, cli.Run, []clitest.Refusal{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"dance"}, 2, `unknown command "dance"`},
		{"call without number", []string{"call", "-ctl", sock}, 2, "usage: carrier call"},
		{"wait without state", []string{"wait", "-ctl", sock, "call-state"}, 2, "usage: carrier wait"},
		{"wait for something else", []string{"wait", "-ctl", sock, "registered", "x"}, 2, "wait call-state"},
		{"bad flag", []string{"status", "-bogus"}, 2, "flag provided but not defined"},
		{"daemon not running", []string{"status", "-ctl", sock}, 1, "daemon not reachable"},
		{"run: no peer", []string{"run", "-ctl", sock, "-sip", cliCarrierIP + ":0"}, 2, "-peer are required"},
		{"run: peer by name", run("-peer", "sbc.example:5061"), 2, "no DNS"},
		{"run: bad trust", run("-trust", "the-sbc"), 2, "-trust"},
		{"run: bad numbers", run("-numbers", "1555"), 2, "number range"},
		{"run: bad transport", run("-peer-transport", "sctp"), 2, "peer transport"},
		{"run: wildcard sip", []string{"run", "-ctl", sock, "-sip", "0.0.0.0:5060", "-peer", cliSBCIP + ":5060"}, 2, "specific IP"},
		{"run: no CA", run("-peer-transport", "tls", "-tls-ca", filepath.Join(dir, "ca.pem"), "-tls-wait", "50ms"), 1, "CA file did not appear"},
		{"run: tls without CA", run("-tls", cliCarrierIP+":0", "-tls-ca", filepath.Join(dir, "ca.pem"), "-tls-wait", "50ms"), 1, "CA file did not appear"},
		{"run: negative interval", run("-options-interval", "-1s"), 2, "options-interval"},
		{"run: log level", run("-log-level", "loud"), 2, "log-level"},
		{"run: stray argument", run("now"), 2, "unexpected arguments"},
	})
}

// The daemon as the lab runs it: TLS trunk to an SBC that owns the lab CA;
// call, ping, status and hangup by CLI; SIGTERM ends it cleanly.
func TestDaemonByCLI(t *testing.T) {
	dir := t.TempDir()
	sbcTLS, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(cliSBCIP)})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := sipnet.Listen(sipnet.Config{Listen: cliSBCIP + ":0", TLSListen: cliSBCIP + ":0", TLS: sbcTLS})
	if err != nil {
		t.Fatal(err)
	}
	// Transport tls: the SBC's Contact then names its TLS listener
	// (;transport=tls), where the carrier's in-dialog requests go.
	sbc, err := uaclient.New(uaclient.Config{Name: "sbc", Endpoint: ep, ToneHz: 1300, Transport: sipnet.TLS,
		Settings: map[string]string{"auto_answer": "100ms"}, Logger: slog.New(slog.NewTextHandler(runtest.Output(t), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sbc.Close() })
	if err := sbc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "run", "carrier.sock")
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- runDaemon([]string{"-sip", cliCarrierIP + ":0", "-tls", cliCarrierIP + ":0",
			"-tls-ca", filepath.Join(dir, labtls.CAFile), "-peer", ep.TLSAddr().String(), "-peer-transport", "tls",
			"-answer-after", "100ms", "-ctl", sock}, &stderr)
	}()
	clitest.Poll(t, 20*time.Second, done, &stderr, func() error {
		if rc, _, errOut := runCLI("status", "-ctl", sock); rc != 0 {
			return fmt.Errorf("status: exit %d: %s", rc, errOut)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "carrier", labtls.CertFile)); err != nil {
		t.Errorf("the carrier's certificate was not issued: %v", err)
	}
	if rc, out, errOut := runCLI("ping", "-ctl", sock); rc != 0 || !strings.Contains(out, ": up (last OPTIONS 200 OK, rtt") {
		t.Fatalf("ping: exit %d %q %q", rc, out, errOut)
	}
	if rc, _, errOut := runCLI("call", "-ctl", sock, "4930123"); rc != 2 || !strings.Contains(errOut, "not an E.164 number") {
		t.Fatalf("call to a bad number: exit %d %q", rc, errOut)
	}
	if rc, out, errOut := runCLI("call", "+15550123", "-ctl", sock, "-from", "+15550177"); rc != 0 {
		t.Fatalf("call: exit %d %q %q", rc, out, errOut)
	}
	if rc, out, errOut := runCLI("wait", "-ctl", sock, "call-state", "confirmed"); rc != 0 {
		t.Fatalf("wait: exit %d %q %q", rc, out, errOut)
	}
	if got := sbc.Status().Calls[0].Peer; !strings.HasPrefix(got, "sip:+15550177@"+cliCarrierIP) {
		t.Errorf("SBC sees the call from %q", got)
	}
	var st carrier.Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, out, _ := runCLI("status", "-json", "-ctl", sock)
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -json: %v: %s", err, out)
		}
		if m := st.Calls[0].Media; m != nil && m.Received.Packets > 10 && m.Received.ToneHz > 1250 && m.Received.ToneHz < 1350 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier never heard the SBC: %+v", st.Calls[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Peer.State != carrier.PeerUp || st.TLS == "" {
		t.Errorf("status: peer %+v, tls %q", st.Peer, st.TLS)
	}
	rc, out, _ := runCLI("status", "-ctl", sock)
	for _, want := range []string{"SIP trunk / carrier", "numbers +1555", "trusted sources " + cliSBCIP + "/32", "heard: tone 1"} {
		if rc != 0 || !strings.Contains(out, want) {
			t.Errorf("status text (exit %d) lacks %q:\n%s", rc, want, out)
		}
	}
	if rc, out, errOut := runCLI("hangup", "-ctl", sock); rc != 0 || !strings.Contains(out, "terminated") {
		t.Fatalf("hangup: exit %d %q %q", rc, out, errOut)
	}
	clitest.StopBySIGTERM(t, done, &stderr)
}
