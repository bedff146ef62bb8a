package labtls_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/labtls"
)

var (
	sbcIPs  = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("203.0.113.5")}
	loopIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
)

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnsureServerCertFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls") // made by EnsureServerCert
	cfg, err := labtls.EnsureServerCert(dir, sbcIPs)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{
		labtls.CAFile: 0o644, labtls.CAKeyFile: 0o600, labtls.CertFile: 0o644, labtls.KeyFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	leaf := cfg.Certificates[0].Leaf
	if got := leaf.Issuer.CommonName; got != labtls.CAName {
		t.Errorf("issuer %q, want %q", got, labtls.CAName)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[1].Equal(net.ParseIP("203.0.113.5")) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: "203.0.113.5"}); err != nil {
		t.Errorf("leaf does not verify for its IP: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("dir holds %d entries (temporary files left?), want 4", len(entries))
	}
}

// Reuse when everything fits; a new server certificate (same CA) when the
// IPs change, so clients holding ca.pem keep working.
func TestEnsureServerCertReuse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		second   []netip.Addr
		sameLeaf bool
	}{
		{"same hosts", sbcIPs, true},
		{"subset of hosts", sbcIPs[:1], true},
		{"new host", append([]netip.Addr{netip.MustParseAddr("10.0.0.5")}, sbcIPs...), false},
		{"other hosts", []netip.Addr{netip.MustParseAddr("192.0.2.1")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := labtls.EnsureServerCert(dir, sbcIPs); err != nil {
				t.Fatal(err)
			}
			ca, leaf, key := read(t, dir, labtls.CAFile), read(t, dir, labtls.CertFile), read(t, dir, labtls.KeyFile)
			cfg, err := labtls.EnsureServerCert(dir, tt.second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ca, read(t, dir, labtls.CAFile)) {
				t.Error("CA was replaced")
			}
			if got := bytes.Equal(leaf, read(t, dir, labtls.CertFile)); got != tt.sameLeaf {
				t.Errorf("server cert kept=%v, want %v", got, tt.sameLeaf)
			}
			if got := bytes.Equal(key, read(t, dir, labtls.KeyFile)); got != tt.sameLeaf {
				t.Errorf("server key kept=%v, want %v", got, tt.sameLeaf)
			}
			for _, h := range tt.second {
				if _, err := cfg.Certificates[0].Leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: h.String()}); err != nil {
					t.Errorf("%s: %v", h, err)
				}
			}
		})
	}
}

func TestEnsureServerCertCorrupt(t *testing.T) {
	for _, tt := range []struct {
		name    string
		file    string
		content string // "" = remove the file
		want    string
	}{
		{"ca not pem", labtls.CAFile, "hello", "ca.pem: want a PEM"},
		{"ca key missing", labtls.CAKeyFile, "", "without ca-key.pem"},
		{"ca missing", labtls.CAFile, "", "without ca.pem"},
		{"cert is a key", labtls.CertFile, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "cert.pem: want a PEM \"CERTIFICATE\""},
		{"key garbage der", labtls.KeyFile, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "key.pem"},
		{"ca key of another CA", labtls.CAKeyFile, "other", "does not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := labtls.EnsureServerCert(dir, loopIPs); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			switch tt.content {
			case "":
				os.Remove(path)
			case "other":
				other := t.TempDir()
				if _, err := labtls.EnsureServerCert(other, loopIPs); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(path, read(t, other, labtls.CAKeyFile), 0o600)
			default:
				os.WriteFile(path, []byte(tt.content), 0o600)
			}
			before, _ := os.ReadFile(path)
			_, err := labtls.EnsureServerCert(dir, loopIPs)
			if !errors.Is(err, labtls.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCorrupt mentioning %q", err, tt.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("the unusable file was overwritten")
			}
		})
	}
}

func TestEnsureServerCertNoHosts(t *testing.T) {
	if _, err := labtls.EnsureServerCert(t.TempDir(), nil); !errors.Is(err, labtls.ErrNoHosts) {
		t.Fatalf("err = %v", err)
	}
}

// handshake serves one TLS connection with srv and dials it with cli.
func handshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*tls.Conn).Handshake()
		io.Copy(io.Discard, c)
	}()
	cli = cli.Clone()
	cli.ServerName = "127.0.0.1" // what sipgo sets from the peer's IP
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cli)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestClientConfigTrust(t *testing.T) {
	ours, other := t.TempDir(), t.TempDir()
	srv, err := labtls.EnsureServerCert(ours, loopIPs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := labtls.EnsureServerCert(other, loopIPs); err != nil {
		t.Fatal(err)
	}
	wrongIP := t.TempDir()
	srvWrongIP, err := labtls.EnsureServerCert(wrongIP, []netip.Addr{netip.MustParseAddr("192.0.2.9")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		srv    *tls.Config
		caFile string
		want   string // "" = handshake succeeds
	}{
		{"same CA", srv, filepath.Join(ours, labtls.CAFile), ""},
		{"other CA", srv, filepath.Join(other, labtls.CAFile), "certificate signed by unknown authority"},
		{"cert for another IP", srvWrongIP, filepath.Join(wrongIP, labtls.CAFile), "certificate is valid for 192.0.2.9, not 127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := labtls.ClientConfig(tt.caFile, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(t, tt.srv, cli)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("handshake: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("handshake err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClientConfigWaits(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, labtls.CAFile)
	if _, err := labtls.ClientConfig(caFile, 150*time.Millisecond); !errors.Is(err, labtls.ErrWaitCA) {
		t.Fatalf("no CA: err = %v, want ErrWaitCA", err)
	}
	made := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := labtls.EnsureServerCert(dir, loopIPs)
		made <- err
	}()
	if _, err := labtls.ClientConfig(caFile, 10*time.Second); err != nil {
		t.Fatalf("CA made while waiting: %v", err)
	}
	// ca.pem appears before the server certificate is written.
	if err := <-made; err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "leaf-as-ca.pem"), read(t, dir, labtls.CertFile), 0o644)
	if _, err := labtls.ClientConfig(filepath.Join(dir, "leaf-as-ca.pem"), 0); !errors.Is(err, labtls.ErrCorrupt) {
		t.Fatalf("server cert given as CA: err = %v, want ErrCorrupt", err)
	}
}

// A second node gets its own server certificate from the first node's CA:
// a client trusting only ca.pem accepts both.
func TestIssueServerCert(t *testing.T) {
	shared := t.TempDir()
	made := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, err := labtls.EnsureServerCert(shared, sbcIPs)
		made <- err
	}()
	t.Cleanup(func() { <-made }) // the SBC side finishes writing before TempDir is removed
	carrierDir := filepath.Join(shared, "carrier")
	srv, err := labtls.IssueServerCert(shared, carrierDir, loopIPs, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := labtls.ClientConfig(filepath.Join(shared, labtls.CAFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, cli); err != nil {
		t.Fatalf("carrier cert not trusted by the lab CA: %v", err)
	}
	leaf := read(t, carrierDir, labtls.CertFile)
	if _, err := labtls.IssueServerCert(shared, carrierDir, loopIPs, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(leaf, read(t, carrierDir, labtls.CertFile)) {
		t.Error("second IssueServerCert did not reuse the certificate")
	}
	if _, err := labtls.IssueServerCert(t.TempDir(), carrierDir, loopIPs, 50*time.Millisecond); !errors.Is(err, labtls.ErrWaitCA) {
		t.Errorf("no CA: err = %v, want ErrWaitCA", err)
	}
}
