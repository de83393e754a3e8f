package certs

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePEM feeds arbitrary bytes to the certificate and CRL parsers, which read files a user
// points the CLI at (`certs revoke FILE`, a configured CA bundle): they must never panic, and a
// nil error must come with a value.
func FuzzParsePEM(f *testing.F) {
	for _, name := range []string{CAFile, ConsumerFile, ConsumerKeyFile, CRLFile} {
		data, err := os.ReadFile(filepath.Join(sharedPKI, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	ca, err := LoadCertificate(filepath.Join(sharedPKI, CAFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := ParseCertificatePEM(data)
		if err == nil && cert == nil {
			t.Error("ParseCertificatePEM returned neither a certificate nor an error")
		}
		crl, err := parseCRLPEM(data)
		if err == nil && crl == nil {
			t.Error("parseCRLPEM returned neither a CRL nor an error")
		}
	})
}
