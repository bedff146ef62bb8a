// Package labtls makes the lab's TLS certificates on the spot, with no
// registry, no ACME and no internet: a lab CA and server certificates with
// IP SANs (the lab has no DNS), written to a directory that a Docker volume
// can share between nodes. None of it is for production.
package labtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CAName is the lab CA's common name: whoever finds it in a trust store
// knows what it is.
const CAName = "siplab lab CA — not for production"

const (
	validity = 10 * 365 * 24 * time.Hour
	// renewBefore re-issues a server certificate this close to its end.
	renewBefore = 30 * 24 * time.Hour
	// backdate covers clocks a little apart between containers and host.
	backdate = time.Hour
)

// EnsureServerCert returns a server TLS config for hosts from dir: the lab
// CA (dir/ca.pem, dir/ca-key.pem) and a server certificate (dir/cert.pem,
// dir/key.pem) naming every host as an IP SAN. What is missing is made;
// what is there is reused when valid. A server certificate that lacks one
// of the hosts, is near its end or was not signed by the CA is re-issued
// by the same CA, so clients keep trusting it. Files that exist but do not
// parse are an error (ErrCorrupt), never overwritten.
//
// The config presents the certificate and trusts the lab CA for the
// connections its owner dials (RootCAs), so one config serves both ways.
func EnsureServerCert(dir string, hosts []netip.Addr) (*tls.Config, error) {
	if len(hosts) == 0 {
		return nil, ErrNoHosts
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("labtls: %w", err)
	}
	ca, caKey, err := ensureCA(dir)
	if err != nil {
		return nil, err
	}
	return ensureLeaf(dir, ca, caKey, hosts)
}

// IssueServerCert is EnsureServerCert for a second node that shares the
// first one's CA: it waits up to wait for caDir/ca.pem and caDir/ca-key.pem
// (made by the node that owns the CA, e.g. in a shared volume) and keeps
// its own server certificate in dir.
func IssueServerCert(caDir, dir string, hosts []netip.Addr, wait time.Duration) (*tls.Config, error) {
	if len(hosts) == 0 {
		return nil, ErrNoHosts
	}
	caFile := filepath.Join(caDir, CAFile)
	if err := waitFile(caFile, wait); err != nil {
		return nil, err
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: %s without %s", ErrCorrupt, caFile, CAKeyFile)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("labtls: %w", err)
	}
	return ensureLeaf(dir, ca, caKey, hosts)
}

// ClientConfig waits up to wait for caFile to appear (another container
// makes it in a shared volume) and returns a config that trusts only that
// CA. The server name to verify is set per connection by the dialer (sipgo
// uses the peer's IP, which the lab certificates carry as IP SANs).
func ClientConfig(caFile string, wait time.Duration) (*tls.Config, error) {
	if err := waitFile(caFile, wait); err != nil {
		return nil, err
	}
	ca, _, err := readCert(caFile)
	if err != nil {
		return nil, err
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrCorrupt, caFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// waitFile polls for path: files are written by rename, so once it exists
// it is complete.
func waitFile(path string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("labtls: %w", err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s (waited %s)", ErrWaitCA, path, wait)
		}
		time.Sleep(min(100*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

// loadCA reads the CA pair; both nil when neither file exists.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	ca, haveCert, err := readCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, haveKey, err := readKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !haveCert && !haveKey:
		return nil, nil, nil
	case !haveKey:
		return nil, nil, fmt.Errorf("%w: %s without %s (remove it to make a new CA)", ErrCorrupt, certPath, CAKeyFile)
	case !haveCert:
		return nil, nil, fmt.Errorf("%w: %s without %s (remove it to make a new CA)", ErrCorrupt, keyPath, CAFile)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%w: %s is not a CA certificate", ErrCorrupt, certPath)
	}
	if !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s does not match %s", ErrCorrupt, keyPath, certPath)
	}
	if time.Now().After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("%w: %s ended %s", ErrCAExpired, certPath, ca.NotAfter.Format(time.RFC3339))
	}
	return ca, key, nil
}

func ensureCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, key, err := loadCA(dir)
	if err != nil || ca != nil {
		return ca, key, err
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("labtls: ca key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: CAName, Organization: []string{"siplab"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("labtls: ca certificate: %w", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	// Key first: a node waiting for ca.pem may then read the key at once.
	if err := writeAtomic(filepath.Join(dir, CAKeyFile), kp, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(filepath.Join(dir, CAFile), certPEM(der), 0o644); err != nil {
		return nil, nil, err
	}
	ca, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("labtls: %w", err)
	}
	return ca, key, nil
}

// ensureLeaf reuses dir's server certificate when it fits, else issues one.
func ensureLeaf(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []netip.Addr) (*tls.Config, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	leaf, haveCert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	key, haveKey, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if haveCert && haveKey && key.PublicKey.Equal(leaf.PublicKey) && leafFits(leaf, ca, hosts) {
		return serverConfig(ca, leaf, key), nil
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("labtls: server key: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if ca.NotAfter.Before(notAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0].String(), Organization: []string{"siplab"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// ClientAuth too: the same certificate can later prove who dials.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(h.Unmap().AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("labtls: server certificate: %w", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(keyPath, kp, 0o600); err != nil {
		return nil, err
	}
	if err := writeAtomic(certPath, certPEM(der), 0o644); err != nil {
		return nil, err
	}
	leaf, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("labtls: %w", err)
	}
	return serverConfig(ca, leaf, key), nil
}

// leafFits: signed by ca, not near its end, and naming every host.
func leafFits(leaf, ca *x509.Certificate, hosts []netip.Addr) bool {
	if leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	if time.Now().Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == h.Unmap()
		}) {
			return false
		}
	}
	return true
}

func serverConfig(ca, leaf *x509.Certificate, key *ecdsa.PrivateKey) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{leaf.Raw, ca.Raw},
			PrivateKey:  key,
			Leaf:        leaf,
		}},
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial is still a
		// valid certificate.
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}
