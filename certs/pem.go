package certs

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PEM block types the dev PKI reads and writes.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemRSAKey      = "RSA PRIVATE KEY"
	pemECKey       = "EC PRIVATE KEY"
	pemCRL         = "X509 CRL"
)

// File modes: keys readable only by their owner, certificates and the CRL by anyone.
const (
	keyMode  os.FileMode = 0o600
	certMode os.FileMode = 0o644
)

type pemFile struct {
	name string
	data []byte
	mode os.FileMode
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func containsPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil
}

// ParseCertificatePEM returns the first certificate in data, which may be PEM (any text around
// the blocks is skipped) or a single DER certificate, as users paste either.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
	if sawPEM {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	// DER: never trimmed as text, because its last byte is the signature's
	// and may well be one TrimSpace would cut. Blank space around it (a
	// stray newline) is dropped by reading the one DER element's length.
	data = bytes.TrimLeft(data, " \t\r\n")
	cert, err := x509.ParseCertificate(data)
	if err != nil {
		var v asn1.RawValue
		if rest, aerr := asn1.Unmarshal(data, &v); aerr == nil && len(rest) > 0 && len(bytes.TrimSpace(rest)) == 0 {
			if c, cerr := x509.ParseCertificate(v.FullBytes); cerr == nil {
				return c, nil
			}
		}
		return nil, fmt.Errorf("neither PEM nor a DER certificate: %w", err)
	}
	return cert, nil
}

// parseCRLPEM returns the CRL in the first "X509 CRL" block of data.
func parseCRLPEM(data []byte) (*x509.RevocationList, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no %s PEM block found", pemCRL)
		}
		if block.Type != pemCRL {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse crl: %w", err)
		}
		return crl, nil
	}
}

// LoadCertificate reads the first certificate of the PEM (or DER) file at path.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	cert, err := ParseCertificatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return cert, nil
}

// LoadCertPool reads every certificate of the PEM file at path into a pool, for ClientCAs and
// RootCAs; a file without any certificate is an error rather than an empty pool that trusts nobody
// and makes every handshake fail with a vaguer message.
func LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ca bundle: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca bundle %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("ca bundle %s: no CERTIFICATE PEM block found", path)
	}
	return pool, nil
}

// LoadKeyPair reads a certificate and its key for a tls.Config, with errors that name both files,
// which tls.LoadX509KeyPair's do not.
func LoadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key pair %s, %s: %w", certPath, keyPath, err)
	}
	return pair, nil
}

// loadPrivateKey reads a PKCS#8, PKCS#1 or SEC 1 private key, so keys made by other tools work
// as the CA key too.
func loadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("private key %s: no PEM block found", path)
	}
	var key any
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemRSAKey:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("private key %s: unexpected PEM block %q", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key %s: %T cannot sign", path, key)
	}
	return signer, nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory that is
// synced and then renamed over path, so a crash leaves either the old file or the new one, never
// half a key; the temporary file has the final mode from the start, so a key is never readable by
// others even briefly.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; Chmod widens it only for certificates.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Syncing the directory makes the rename itself durable; not every platform allows it.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
