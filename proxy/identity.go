package proxy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"sync"
	"time"
)

// identity is what the chain and the audit need of a client certificate.
type identity struct {
	subject     string
	fingerprint string // SHA-256 of the DER, hex
	names       []string
	// issuer, serial (lowercase hex) and notAfter (RFC 3339, UTC) say
	// which certificate it was, for the audit (GPC-SPN-TST-03).
	issuer, serial, notAfter string
}

// identities remembers the identity of each verified leaf certificate, so
// the requests of one connection (which share the parsed certificate) do not
// format the subject and hash the certificate again. It forgets everything
// when full, so it stays bounded whatever clients do.
type identities struct {
	mu sync.Mutex
	m  map[*x509.Certificate]identity
}

const maxIdentities = 4096

func (c *identities) of(leaf *x509.Certificate) identity {
	c.mu.Lock()
	id, ok := c.m[leaf]
	c.mu.Unlock()
	if ok {
		return id
	}
	sum := sha256.Sum256(leaf.Raw)
	id = identity{subject: leaf.Subject.String(), fingerprint: hex.EncodeToString(sum[:]), names: certNames(leaf),
		issuer: leaf.Issuer.String(), notAfter: leaf.NotAfter.UTC().Format(time.RFC3339)}
	if leaf.SerialNumber != nil {
		id.serial = leaf.SerialNumber.Text(16)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxIdentities {
		c.m = make(map[*x509.Certificate]identity)
	}
	c.m[leaf] = id
	c.mu.Unlock()
	return id
}
