package interop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// The SIP domain and the demo users are the Docker lab's own
// (lab-nets/users.conf), so the accounts docs/interop.md tells people to
// type into sipp or baresip are the ones these tests prove work.
const (
	domain    = "siplab.test"
	usersFile = "../lab-nets/users.conf"
)

var demoPasswords = map[string]string{
	"alice": "alice-secret",
	"bob":   "bob-secret",
	"carol": "carol-secret",
}

// testTimeout bounds each test's waits: a hang fails, a slow machine does not.
const testTimeout = 60 * time.Second

// needTool fails the test when a third-party tool is missing: these tests
// exist to prove interop with the real tools, so a silent skip would
// report success for something never tried.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install the Debian package %s (.ci/run does); interop tests fail rather than skip", name, pkg)
	}
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// confirmedCall has from call to and waits until the call is confirmed;
// what names the call in a failure.
func confirmedCall(t *testing.T, ctx context.Context, from *uaclient.Phone, to, what string) (*uaclient.Call, uaclient.CallStatus) {
	t.Helper()
	c, err := from.Call(ctx, to)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	st, err := c.Wait(ctx, uaclient.StateConfirmed)
	if err != nil {
		t.Fatalf("%s: %v (%+v)", what, err, st)
	}
	return c, st
}

func testLogger(t *testing.T) *slog.Logger {
	// Printed only when the test fails; goroutines that log after the test
	// ended write into the buffer, never into a finished testing.T.
	lb := &siptest.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", tail(lb.String(), 12000))
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// freePort returns a port free for both UDP and TCP on ip. The test's
// addresses are its own, so nobody else races for the port between this
// check and the tool binding it.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("no port free for UDP and TCP on %s", ip)
	return 0
}

// freeEvenPort is for RTP: sipp and baresip take the even port and the odd
// one above (RTCP); sipp also takes +2 for video.
func freeEvenPort(t *testing.T, ip string) int {
	t.Helper()
	for range 100 {
		p := freePort(t, ip)
		if p%2 == 1 || p > 65000 {
			continue
		}
		ok := true
		for _, q := range []int{p + 1, p + 2, p + 3} {
			u, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no even RTP port free on %s", ip)
	return 0
}

// lab is the platform as cmd/registrar and cmd/proxy wire it (the proxy
// with -users), in this process on loopback: a registrar (SIP + location
// HTTP API, trusting the proxy's Path) and a proxy that forwards REGISTERs to
// it, looks users up in its copy of the registrar's bindings (location.Cache
// over the HTTP API) and challenges our users' INVITEs with 407.
type lab struct {
	reg      *registrar.Registrar
	regSIP   netip.AddrPort
	proxy    *proxy.Proxy
	proxySIP netip.AddrPort
	log      *slog.Logger
}

func startLab(t *testing.T, proxyIP, regIP string) *lab {
	t.Helper()
	log := testLogger(t)
	users, err := sipauth.LoadUsers(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	reg, err := registrar.New(registrar.Config{
		Domain: domain, Users: users, Logger: log.With("component", "registrar"),
		TrustedProxies: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(proxyIP), 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rep, err := sipnet.Listen(sipnet.Config{Listen: regIP + ":0", UserAgent: "siplab-registrar", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	reg.Attach(rep)
	if err := rep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp4", regIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: location.NewHandler(reg), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })

	auth, err := sipauth.New(sipauth.Config{Realm: domain, Users: users, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	pep, err := sipnet.Listen(sipnet.Config{Listen: proxyIP + ":0", UserAgent: "siplab-proxy", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	locURL := "http://" + hl.Addr().String()
	// As cmd/proxy with -location-watch on (its default): the bindings
	// streamed from the registrar, direct lookups until the stream is up.
	cache := location.NewCache(&location.HTTPClient{BaseURL: locURL}, log.With("component", "proxy"))
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan struct{})
	go func() { cache.Run(cctx); close(cdone) }()
	t.Cleanup(func() { ccancel(); <-cdone }) // before hs.Close: it logs to t
	p, err := proxy.New(proxy.Config{
		Domain: domain, Registrar: rep.Addr().String(),
		Location: cache,
		Auth:     auth, AuthInvites: true,
		Logger: log.With("component", "proxy"),
	}, pep)
	if err != nil {
		pep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &lab{reg: reg, regSIP: rep.Addr(), proxy: p, proxySIP: pep.Addr(), log: log}
}

// waitBinding polls the registrar until user has a binding that fits.
func (l *lab) waitBinding(t *testing.T, ctx context.Context, user string, fits func(location.Binding) bool) location.Binding {
	t.Helper()
	for {
		bs, err := l.reg.Lookup(ctx, user)
		if err != nil {
			t.Fatalf("lookup %s: %v", user, err)
		}
		for _, b := range bs {
			if fits(b) {
				return b
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no fitting binding for %s; have %+v", user, bs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startPhone runs one of our softphones (uaclient) registered through the
// lab's proxy.
func (l *lab) startPhone(t *testing.T, ctx context.Context, ip, user string, autoAnswer time.Duration) *uaclient.Phone {
	t.Helper()
	settings := map[string]string{}
	if autoAnswer > 0 {
		settings["auto_answer"] = autoAnswer.String()
	}
	p, err := uaclient.New(uaclient.Config{
		Name: user, Password: demoPasswords[user], Domain: domain,
		Proxy: l.proxySIP.String(), Listen: ip + ":0", AutoRegister: true,
		Settings: settings, Logger: l.log.With("component", "uaclient"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, err := p.WaitRegistration(ctx, uaclient.RegRegistered); err != nil {
		t.Fatalf("%s did not register through the proxy: %v (%+v)", user, err, st)
	}
	return p
}

// sippResult is what one sipp run reports.
type sippResult struct {
	exit       int
	successful int
	failed     int
	screen     string // the final statistics screen
	messages   string // every message sent and received (-trace_msg)
	errors     string // -trace_err
	stdout     string
}

func (r sippResult) String() string {
	return fmt.Sprintf("exit %d, %d successful, %d failed\n%s\nerrors:\n%s\nstdout:\n%s\nmessages:\n%s",
		r.exit, r.successful, r.failed, tail(r.screen, 4000), tail(r.errors, 4000), tail(r.stdout, 2000), tail(r.messages, 8000))
}

// sippCmd prepares sipp with its screen, errors and messages written to
// files of the test (sipp's screen is made for terminals).
type sippCmd struct {
	cmd                  *exec.Cmd
	dir, name            string
	stdout               *siptest.LogBuffer
	screen, errs, msgLog string
}

func newSipp(t *testing.T, ctx context.Context, name string, args ...string) *sippCmd {
	t.Helper()
	dir := t.TempDir()
	s := &sippCmd{dir: dir, name: name, stdout: &siptest.LogBuffer{},
		screen: dir + "/" + name + ".screen", errs: dir + "/" + name + ".errors", msgLog: dir + "/" + name + ".messages"}
	all := append([]string{}, args...)
	all = append(all, "-nostdin",
		"-trace_screen", "-screen_file", s.screen,
		"-trace_err", "-error_file", s.errs,
		"-trace_msg", "-message_file", s.msgLog)
	s.cmd = exec.CommandContext(ctx, "sipp", all...)
	s.cmd.Dir = dir
	s.cmd.Stdout = s.stdout
	s.cmd.Stderr = s.stdout
	s.cmd.WaitDelay = 2 * time.Second
	return s
}

func (s *sippCmd) start(t *testing.T) {
	t.Helper()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("sipp %s: %v", s.name, err)
	}
	// A test that fails early must not leave sipp running.
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
}

func (s *sippCmd) wait() sippResult {
	err := s.cmd.Wait()
	r := sippResult{exit: s.cmd.ProcessState.ExitCode(), stdout: s.stdout.String()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		r.errors = err.Error() + "\n"
	}
	if b, err := os.ReadFile(s.screen); err == nil {
		r.screen = string(b)
	}
	if b, err := os.ReadFile(s.errs); err == nil {
		r.errors += string(b)
	}
	if b, err := os.ReadFile(s.msgLog); err == nil {
		r.messages = string(b)
	}
	r.successful = screenCounter(r.screen, "Successful call")
	r.failed = screenCounter(r.screen, "Failed call")
	return r
}

func (s *sippCmd) run(t *testing.T) sippResult {
	t.Helper()
	s.start(t)
	return s.wait()
}

// screenCounter reads the cumulative column of a sipp statistics line:
//
//	Successful call        |        0                  |       20
//
// -1 when absent (sipp died before printing statistics).
func screenCounter(screen, name string) int {
	n := -1
	for _, line := range strings.Split(screen, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), name) {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 3 {
			continue
		}
		if v, err := strconv.Atoi(strings.TrimSpace(cols[len(cols)-1])); err == nil {
			n = v // the screen is dumped more than once; the last one is final
		}
	}
	return n
}

// repoFile is the absolute path of a file of this repository: sipp runs in
// a temporary directory so its own log files land there.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile writes a test input (injection file, config) and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sippRegister registers user with sipp's digest auth (bench/sipp/register.xml)
// from ip:port, so a sipp UAS started afterwards on that same socket is
// where the proxy sends the user's calls (the registrar stores the address
// the REGISTER came from).
func sippRegister(t *testing.T, ctx context.Context, server netip.AddrPort, user, ip string, port int) sippResult {
	t.Helper()
	dir := t.TempDir()
	inf := writeFile(t, dir, "reg.csv", fmt.Sprintf("SEQUENTIAL\n%s;%s;%s:%d\n", user, demoPasswords[user], ip, port))
	s := newSipp(t, ctx, "register-"+user, server.String(),
		"-sf", repoFile(t, "bench/sipp/register.xml"), "-inf", inf, "-auth_uri", domain,
		"-i", ip, "-p", strconv.Itoa(port), "-m", "1", "-timeout", "20s", "-timeout_error")
	return s.run(t)
}
