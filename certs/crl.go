package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// newCRL signs a CRL with the given number and entries. Its NextUpdate is the CA's expiry: the
// dev PKI has no CRL distribution service, so a CRL that lapsed sooner would make the SSP refuse
// every client (the checker fails closed) for no reason a developer could see.
func newCRL(ca *x509.Certificate, caKey crypto.Signer, number *big.Int, entries []x509.RevocationListEntry, now time.Time) ([]byte, error) {
	next := ca.NotAfter
	if !next.After(now) {
		return nil, fmt.Errorf("ca expired at %s: recreate the dev pki with `sspemu certs init --force`", ca.NotAfter.Format(time.RFC3339))
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.Add(-backdate),
		NextUpdate:                next,
		RevokedCertificateEntries: entries,
	}, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign crl: %w", err)
	}
	return encodePEM(pemCRL, der), nil
}

// loadCRL reads the CRL at path and checks it is signed by ca, so a CRL swapped for another CA's
// (which would revoke nothing) is noticed.
func loadCRL(path string, ca *x509.Certificate) (*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read crl: %w", err)
	}
	crl, err := parseCRLPEM(data)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", path, err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("crl %s is not signed by the ca %q: %w", path, ca.Subject.CommonName, err)
	}
	return crl, nil
}

// Revoke adds the certificate in certFile to dir's crl.pem and re-signs it with the next CRL
// number, so a running SSP refuses that certificate at its next handshake. The certificate must
// have been issued by dir's CA: revoking a serial of another CA would block an unrelated
// certificate that happens to share it. Revoking an already revoked certificate changes nothing
// and is not an error. Two Revoke calls racing on the same dir may lose one entry; the CLI runs one
// at a time.
func Revoke(dir, certFile string) error {
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return err
	}
	cert, err := LoadCertificate(certFile)
	if err != nil {
		return err
	}
	if cert.Equal(caCert) {
		return fmt.Errorf("%s is the ca itself; recreate the dev pki instead of revoking it", certFile)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return fmt.Errorf("certificate %s (serial %s) was not issued by the ca in %s: %w", certFile, serialHex(cert.SerialNumber), dir, err)
	}

	crlPath := filepath.Join(dir, CRLFile)
	crl, err := loadCRL(crlPath, caCert)
	if err != nil {
		return err
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return nil
		}
	}
	now := time.Now()
	entries := append(crl.RevokedCertificateEntries, x509.RevocationListEntry{
		SerialNumber:   cert.SerialNumber,
		RevocationTime: now,
	})
	number := big.NewInt(1)
	if crl.Number != nil {
		number.Add(crl.Number, big.NewInt(1))
	}
	data, err := newCRL(caCert, caKey, number, entries, now)
	if err != nil {
		return err
	}
	return writeFileAtomic(crlPath, data, certMode)
}

// serialHex formats a serial number the way openssl and browsers show it.
func serialHex(n *big.Int) string {
	if n == nil {
		return "<none>"
	}
	return fmt.Sprintf("%X", n)
}

// CRLChecker answers whether a client certificate is revoked by the dev CA's CRL. It re-reads the
// CRL file whenever the file is replaced or its modification time or size changes, so `sspemu
// certs revoke` takes effect without restarting the SSP. A CRL that cannot be read, is not signed
// by the CA, or has passed its NextUpdate makes every check fail (fail closed). It is safe for
// concurrent use.
type CRLChecker struct {
	path string
	ca   *x509.Certificate
	now  func() time.Time

	mu      sync.Mutex
	info    os.FileInfo // of the file the current revoked set was read from; nil before a good load
	revoked map[string]struct{}
	next    time.Time
}

// NewCRLChecker loads the CRL at crlPath, which must be signed by ca, and returns a checker that
// follows changes to that file.
func NewCRLChecker(crlPath string, ca *x509.Certificate) (*CRLChecker, error) {
	if ca == nil {
		return nil, errors.New("crl checker: ca certificate is nil")
	}
	c := &CRLChecker{path: crlPath, ca: ca, now: time.Now}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refreshLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// refreshLocked reloads the CRL if the file changed since the last successful load.
func (c *CRLChecker) refreshLocked() error {
	info, err := os.Stat(c.path)
	if err != nil {
		c.info = nil
		return fmt.Errorf("crl: %w", err)
	}
	if c.info != nil && os.SameFile(c.info, info) && info.ModTime().Equal(c.info.ModTime()) && info.Size() == c.info.Size() {
		return nil
	}
	crl, err := loadCRL(c.path, c.ca)
	if err != nil {
		// Forget the old state so the next call retries instead of trusting a stale list.
		c.info = nil
		return err
	}
	revoked := make(map[string]struct{}, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		revoked[e.SerialNumber.String()] = struct{}{}
	}
	c.info, c.revoked, c.next = info, revoked, crl.NextUpdate
	return nil
}

// Check returns nil when leaf is not on the CRL, and otherwise an error naming its serial; any
// problem with the CRL itself is an error as well, so a broken CRL never lets a revoked
// certificate through. Call it with the leaf of a chain already verified against the CA.
func (c *CRLChecker) Check(leaf *x509.Certificate) error {
	if leaf == nil || leaf.SerialNumber == nil {
		return errors.New("crl check: no certificate")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refreshLocked(); err != nil {
		return err
	}
	if !c.next.IsZero() && c.now().After(c.next) {
		return fmt.Errorf("crl %s expired at %s", c.path, c.next.Format(time.RFC3339))
	}
	if _, ok := c.revoked[leaf.SerialNumber.String()]; ok {
		return fmt.Errorf("certificate serial %s (%s) is revoked by %s", serialHex(leaf.SerialNumber), leaf.Subject.CommonName, c.path)
	}
	return nil
}

// VerifyConnection is the one way sspemu's TLS servers check revocation:
// set it as tls.Config.VerifyConnection. That hook runs on resumed sessions
// too, so a session ticket issued before a revocation does not let the
// certificate back in. It fails closed: a connection without a peer
// certificate is refused, whatever tls.Config.ClientAuth says.
func (c *CRLChecker) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	return c.Check(cs.PeerCertificates[0])
}
