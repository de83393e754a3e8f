package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitialCRL(t *testing.T) {
	crl := mustLoadCRL(t, sharedPKI) // checks the CA's signature
	if len(crl.RevokedCertificateEntries) != 0 {
		t.Errorf("initial crl revokes %d certificates", len(crl.RevokedCertificateEntries))
	}
	if crl.Number == nil || crl.Number.Int64() != 1 {
		t.Errorf("initial crl number = %v, want 1", crl.Number)
	}
	if until := time.Until(crl.NextUpdate); until < 365*24*time.Hour {
		t.Errorf("crl next update in %s, want at least a year", until)
	}
}

func TestRevoke(t *testing.T) {
	dir := copyPKI(t)
	consumer := mustLoadCert(t, filepath.Join(dir, ConsumerFile))
	provider := mustLoadCert(t, filepath.Join(dir, ProviderFile))

	if err := Revoke(dir, filepath.Join(dir, ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	crl := mustLoadCRL(t, dir)
	if crl.Number.Int64() != 2 {
		t.Errorf("crl number after one revocation = %v, want 2", crl.Number)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(consumer.SerialNumber) != 0 {
		t.Fatalf("crl entries = %v, want the consumer serial %s", crl.RevokedCertificateEntries, serialHex(consumer.SerialNumber))
	}

	// Revoking again is not an error and changes nothing.
	before := readAll(t, dir)
	if err := Revoke(dir, filepath.Join(dir, ConsumerFile)); err != nil {
		t.Errorf("second revocation: %v", err)
	}
	if !mapsEqual(before, readAll(t, dir)) {
		t.Error("revoking an already revoked certificate changed the directory")
	}

	if err := Revoke(dir, filepath.Join(dir, ProviderFile)); err != nil {
		t.Fatal(err)
	}
	crl = mustLoadCRL(t, dir)
	if crl.Number.Int64() != 3 {
		t.Errorf("crl number after two revocations = %v, want 3", crl.Number)
	}
	var serials []string
	for _, e := range crl.RevokedCertificateEntries {
		serials = append(serials, serialHex(e.SerialNumber))
	}
	if want := []string{serialHex(consumer.SerialNumber), serialHex(provider.SerialNumber)}; strings.Join(serials, ",") != strings.Join(want, ",") {
		t.Errorf("revoked serials = %q, want %q", serials, want)
	}
	info, err := os.Stat(filepath.Join(dir, CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("crl mode = %o, want 644", info.Mode().Perm())
	}
}

func TestRevokeRefuses(t *testing.T) {
	dir := copyPKI(t)
	foreign := foreignPKI(t)
	for _, tc := range []struct {
		name, certFile string
		want           []string
	}{
		{"certificate of another ca", filepath.Join(foreign, ConsumerFile), []string{filepath.Join(foreign, ConsumerFile), "not issued by the ca"}},
		{"the ca itself", filepath.Join(dir, CAFile), []string{filepath.Join(dir, CAFile), "ca itself"}},
		{"missing file", filepath.Join(dir, "nope.pem"), []string{filepath.Join(dir, "nope.pem")}},
		{"not a certificate", filepath.Join(dir, ConsumerKeyFile), []string{filepath.Join(dir, ConsumerKeyFile)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := readAll(t, dir)
			wantErrContaining(t, Revoke(dir, tc.certFile), tc.want...)
			if !mapsEqual(before, readAll(t, dir)) {
				t.Error("a refused Revoke changed the directory")
			}
		})
	}
	t.Run("crl signed by another ca", func(t *testing.T) {
		d := copyPKI(t)
		copyFile(t, filepath.Join(foreign, CRLFile), filepath.Join(d, CRLFile), 0o644)
		wantErrContaining(t, Revoke(d, filepath.Join(d, ConsumerFile)), filepath.Join(d, CRLFile), "not signed by the ca")
	})
}

func TestCRLChecker(t *testing.T) {
	dir := copyPKI(t)
	ca := mustLoadCert(t, filepath.Join(dir, CAFile))
	consumer := mustLoadCert(t, filepath.Join(dir, ConsumerFile))
	provider := mustLoadCert(t, filepath.Join(dir, ProviderFile))
	crlPath := filepath.Join(dir, CRLFile)

	c, err := NewCRLChecker(crlPath, ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(consumer); err != nil {
		t.Fatalf("consumer before revocation: %v", err)
	}

	// The same checker sees the revocation: no restart, no new checker.
	if err := Revoke(dir, filepath.Join(dir, ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, c.Check(consumer), serialHex(consumer.SerialNumber), "revoked")
	if err := c.Check(provider); err != nil {
		t.Errorf("provider is not revoked but Check says: %v", err)
	}

	// Fail closed when the CRL is replaced by another CA's, then recover when it is restored.
	good, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	foreignCRL, err := os.ReadFile(filepath.Join(foreignPKI(t), CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(crlPath, foreignCRL, 0o644); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, c.Check(provider), crlPath, "not signed by the ca")
	if err := writeFileAtomic(crlPath, []byte("not a crl"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, c.Check(provider), crlPath)
	if err := os.Remove(crlPath); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, c.Check(provider), crlPath)
	if err := writeFileAtomic(crlPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(provider); err != nil {
		t.Errorf("after restoring the crl: %v", err)
	}
	wantErrContaining(t, c.Check(consumer), serialHex(consumer.SerialNumber))

	// Fail closed once the CRL is past its NextUpdate.
	c.now = func() time.Time { return ca.NotAfter.Add(time.Hour) }
	wantErrContaining(t, c.Check(provider), "expired")

	wantErrContaining(t, c.Check(nil), "no certificate")
}

func TestNewCRLCheckerRefuses(t *testing.T) {
	dir := copyPKI(t)
	ca := mustLoadCert(t, filepath.Join(dir, CAFile))
	foreign := foreignPKI(t)
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "none.pem"), "none.pem"},
		{"another ca's crl", filepath.Join(foreign, CRLFile), "not signed by the ca"},
		{"not a crl", filepath.Join(dir, CAFile), "no X509 CRL PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCRLChecker(tc.path, ca)
			wantErrContaining(t, err, tc.want)
		})
	}
	if _, err := NewCRLChecker(filepath.Join(dir, CRLFile), nil); err == nil {
		t.Error("a nil ca is accepted")
	}
}

// TestCRLCheckerConcurrent lets the race detector watch concurrent Checks while the CRL changes.
func TestCRLCheckerConcurrent(t *testing.T) {
	dir := copyPKI(t)
	ca := mustLoadCert(t, filepath.Join(dir, CAFile))
	provider := mustLoadCert(t, filepath.Join(dir, ProviderFile))
	c, err := NewCRLChecker(filepath.Join(dir, CRLFile), ca)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for range 50 {
				if e := c.Check(provider); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	if err := Revoke(dir, filepath.Join(dir, ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Errorf("provider check during a revocation: %v", err)
		}
	}
}
