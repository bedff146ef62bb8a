package labtls

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names in a certificate directory. The CA key is kept next to the CA
// so a server certificate can be re-issued (new IPs, expiry) without
// changing the CA every client already trusts.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
	CertFile  = "cert.pem"
	KeyFile   = "key.pem"
)

// readPEM returns the DER of the one block of type typ in path; ok is false
// when the file does not exist.
func readPEM(path, typ string) (der []byte, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("labtls: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, true, fmt.Errorf("%w: %s: want a PEM %q block", ErrCorrupt, path, typ)
	}
	return blk.Bytes, true, nil
}

func readCert(path string) (*x509.Certificate, bool, error) {
	der, ok, err := readPEM(path, "CERTIFICATE")
	if !ok || err != nil {
		return nil, ok, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return c, true, nil
}

func readKey(path string) (*ecdsa.PrivateKey, bool, error) {
	der, ok, err := readPEM(path, "EC PRIVATE KEY")
	if !ok || err != nil {
		return nil, ok, err
	}
	k, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return k, true, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("labtls: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeAtomic writes data under a temporary name in the same directory,
// syncs it and renames it into place, so a reader in another container
// (the shared volume) sees the whole file or none.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("labtls: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("labtls: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("labtls: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("labtls: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("labtls: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("labtls: %w", err)
	}
	return nil
}
