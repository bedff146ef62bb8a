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
	return readParsed(path, "CERTIFICATE", x509.ParseCertificate)
}

func readKey(path string) (*ecdsa.PrivateKey, bool, error) {
	return readParsed(path, "EC PRIVATE KEY", x509.ParseECPrivateKey)
}

// readParsed reads path's PEM block of type typ (readPEM) and parses it;
// a block that does not parse is ErrCorrupt.
func readParsed[T any](path, typ string, parse func([]byte) (T, error)) (v T, ok bool, err error) {
	der, ok, err := readPEM(path, typ)
	if !ok || err != nil {
		return v, ok, err
	}
	if v, err = parse(der); err != nil {
		return v, true, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return v, true, nil
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
