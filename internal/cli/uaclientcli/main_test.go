package uaclientcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/cli/clitest"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/uaclient"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	rc := cli.Run(args, &out, &errb)
	return rc, out.String(), errb.String()
}

// cliStep is one CLI run and what it must answer: its exit code and a
// part of its output.
type cliStep struct {
	args    []string
	wantRC  int
	wantOut string
}

// runSteps runs the steps in order and stops at the first wrong answer.
func runSteps(t *testing.T, steps []cliStep) {
	t.Helper()
	for _, s := range steps {
		rc, out, errOut := runCLI(s.args...)
		if rc != s.wantRC || !strings.Contains(out, s.wantOut) {
			t.Fatalf("%v: exit %d out %q err %q; want exit %d and %q", s.args, rc, out, errOut, s.wantRC, s.wantOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	clitest.Refuses(t, cli.Run, []clitest.Refusal{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"dance"}, 2, `unknown command "dance"`},
		{"call without target", []string{"call", "-ctl", sock}, 2, "usage: uaclient call"},
		{"too many args", []string{"hangup", "-ctl", sock, "1", "2"}, 2, "usage"},
		{"reject bad code", []string{"reject", "-ctl", sock, "1", "200"}, 2, "not a SIP failure code"},
		{"wait call-state without state", []string{"wait", "-ctl", sock, "call-state"}, 2, "needs a state"},
		{"message without text", []string{"message", "-ctl", sock, "bob"}, 2, "usage: uaclient message"},
		{"transfer without target", []string{"transfer", "-ctl", sock}, 2, "needs a target"},
		{"subscribe without event", []string{"subscribe", "-ctl", sock, "bob"}, 2, "event package"},
		{"hold too many args", []string{"hold", "-ctl", sock, "1", "2"}, 2, "usage: uaclient hold"},
		{"bad flag", []string{"status", "-bogus"}, 2, "flag provided but not defined"},
		{"daemon not running", []string{"status", "-ctl", sock}, 1, "daemon not reachable"},
		{"run: bad transport", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-transport", "sctp"}, 2, "transport"},
		{"run: bad codec", []string{"run", "-ctl", sock, "-codecs", "g729"}, 2, "unknown codec"},
		{"run: bad dtmf", []string{"run", "-ctl", sock, "-dtmf", "maybe"}, 2, "want on or off"},
		{"run: bad gateway", []string{"run", "-ctl", sock, "-gateway", "router"}, 2, "not an IP address"},
		{"run: bad setting", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-set", "rport=sometimes"}, 2, "rport"},
		{"run: unknown setting", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-set", "colour=red"}, 2, "unknown setting"},
		{"run: bad sip address", []string{"run", "-ctl", sock, "-sip", "nowhere"}, 2, "sip listen address"},
		{"run: odd rtp port", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-rtp-port", "4001"}, 2, "even"},
		{"run: log level", []string{"run", "-log-level", "loud"}, 2, "log-level"},
		{"run: stun server by name", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-stun", "stun.example.com:3478"}, 2, "stun_server"},
		{"run: bad media_relay", []string{"run", "-ctl", sock, "-sip", "127.0.12.2:0", "-set", "media_relay=ice"}, 2, "media_relay"},
	})
}

// startPhone runs a phone in-process behind a control socket.
func startPhone(t *testing.T, cfg uaclient.Config) (*uaclient.Phone, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	p, err := uaclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), cfg.Name+".sock")
	ln, err := ctl.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ctl.ServeListener(ctx, ln, p.Handler()); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p, sock
}

func freeUDPPort(t *testing.T, ip string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func TestCallByCLI(t *testing.T) {
	// Fixed ports so each phone can name the other as its proxy.
	aAddr, bAddr := freeUDPPort(t, "127.0.12.2"), freeUDPPort(t, "127.0.12.3")
	_, asock := startPhone(t, uaclient.Config{Name: "alice", Listen: aAddr, Proxy: bAddr, ToneHz: 700})
	_, bsock := startPhone(t, uaclient.Config{Name: "bob", Listen: bAddr, Proxy: aAddr, ToneHz: 1100})

	runSteps(t, []cliStep{
		{[]string{"call", "-ctl", asock, "bob"}, 0, "call 1 outgoing sip:bob@127.0.12.3"},
		{[]string{"wait", "-ctl", bsock, "call-state", "ringing"}, 0, "ringing"},
		{[]string{"answer", "-ctl", bsock}, 0, "confirmed (200 OK)"},
		{[]string{"wait", "-ctl", asock, "call-state", "confirmed", "1"}, 0, "codec PCMU/8000"},
		{[]string{"dtmf", "-ctl", asock, "1", "9*"}, 0, `sent "9*"`},
		{[]string{"set", "-ctl", asock, "via_addr", "198.51.100.7"}, 0, "via_addr = 198.51.100.7"},
		{[]string{"get", "-ctl", asock, "via_addr"}, 0, "198.51.100.7"},
		{[]string{"get", "-ctl", asock, "nosuch"}, 2, ""},
		{[]string{"options", "-ctl", asock}, 0, "OPTIONS sip:127.0.12.3"},
		{[]string{"reject", "-ctl", bsock}, 1, ""}, // nothing ringing
		{[]string{"hangup", "-ctl", bsock}, 0, "ended by local: BYE sent, 200 OK"},
		// alice answers the BYE before she records it: wait, don't race.
		{[]string{"wait", "-ctl", asock, "call-state", "terminated", "1"}, 0, "terminated"},
		{[]string{"status", "-ctl", asock}, 0, "ended by remote: BYE received"},
	})
	// -json is machine readable and carries the media facts.
	rc, out, _ := runCLI("status", "-ctl", bsock, "-json")
	if rc != 0 {
		t.Fatalf("status -json exit %d", rc)
	}
	var st uaclient.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	if len(st.Calls) != 1 || st.Calls[0].Media == nil || st.Calls[0].DTMFReceived == "" && st.Calls[0].Media.Received.DTMF == "" {
		t.Fatalf("status -json call %+v", st.Calls)
	}
}

// TestDaemonLifecycle runs `uaclient run` in-process, drives it through
// its socket, then stops it with SIGTERM as docker stop does.
func TestDaemonLifecycle(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "alice.sock")
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- runDaemon([]string{"-name", "alice", "-sip", "127.0.12.2:0", "-ctl", sock, "-set", "rport=off", "-auto-answer", "2s"}, io.Discard, &stderr)
	}()
	var settings string
	clitest.Poll(t, 20*time.Second, done, &stderr, func() error {
		rc, out, errOut := runCLI("get", "-ctl", sock, "-json")
		if rc != 0 {
			return fmt.Errorf("get: exit %d: %s", rc, errOut)
		}
		settings = out
		return nil
	})
	if !strings.Contains(settings, `"value": "off"`) || !strings.Contains(settings, `"2s"`) {
		t.Fatalf("initial settings not applied: %s", settings)
	}
	// A second daemon on the same socket must refuse to start.
	if rc, _, errOut := runCLI("run", "-name", "alice2", "-sip", "127.0.12.2:0", "-ctl", sock); rc != 1 || !strings.Contains(errOut, "in use") {
		t.Fatalf("second daemon: exit %d %q", rc, errOut)
	}
	clitest.StopBySIGTERM(t, done, &stderr)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// TestFeatureVerbsByCLI drives hold, resume, message, INFO DTMF, transfer
// and subscribe through the CLI between two phones on 127.0.11.x.
func TestFeatureVerbsByCLI(t *testing.T) {
	aAddr, bAddr := freeUDPPort(t, "127.0.11.1"), freeUDPPort(t, "127.0.11.2")
	_, asock := startPhone(t, uaclient.Config{Name: "alice", Listen: aAddr, Proxy: bAddr, ToneHz: 700})
	_, bsock := startPhone(t, uaclient.Config{Name: "bob", Listen: bAddr, Proxy: aAddr, ToneHz: 1100,
		Settings: map[string]string{"auto_answer": "1ms"}})
	runSteps(t, []cliStep{
		{[]string{"hold", "-ctl", asock}, 1, ""}, // no call yet
		{[]string{"call", "-ctl", asock, "bob"}, 0, "call 1 outgoing"},
		{[]string{"wait", "-ctl", asock, "call-state", "confirmed"}, 0, "confirmed"},
		{[]string{"hold", "-ctl", asock}, 0, "direction: local sendonly, remote recvonly; on hold (we hold the peer)"},
		{[]string{"status", "-ctl", bsock}, 0, "held by remote"},
		{[]string{"hold", "-ctl", asock, "1"}, 1, ""}, // already on hold
		{[]string{"resume", "-ctl", asock, "1"}, 0, "direction: local sendrecv, remote sendrecv\n"},
		{[]string{"update", "-ctl", asock}, 0, "confirmed"},
		{[]string{"set", "-ctl", asock, "dtmf_mode", "info"}, 0, "dtmf_mode = info"},
		{[]string{"dtmf", "-ctl", asock, "42"}, 0, `sent "42"`},
		{[]string{"status", "-ctl", bsock}, 0, `"42" (SIP INFO)`},
		{[]string{"message", "-ctl", asock, "bob", "hello", "there"}, 0, "200 OK\n  \"hello there\""},
		{[]string{"status", "-ctl", bsock}, 0, `"hello there"`},
		// Phones are not notifiers: the SUBSCRIBE is refused, exit 1.
		{[]string{"subscribe", "-ctl", asock, "bob", "dialog"}, 1, "failed (405 Method Not Allowed)"},
		{[]string{"unsubscribe", "-ctl", asock}, 1, ""},
		{[]string{"transfer", "-ctl", asock, "9", "carol"}, 1, ""}, // no call 9
		{[]string{"hangup", "-ctl", asock}, 0, "BYE sent, 200 OK"},
	})
	rc, out, _ := runCLI("status", "-ctl", bsock, "-json")
	var st uaclient.Status
	if err := json.Unmarshal([]byte(out), &st); rc != 0 || err != nil {
		t.Fatalf("status -json: %d %v", rc, err)
	}
	if len(st.Messages) != 1 || st.Messages[0].Text != "hello there" || st.Calls[0].DTMFInfoReceived != "42" {
		t.Fatalf("json status messages %+v calls %+v", st.Messages, st.Calls)
	}
}
