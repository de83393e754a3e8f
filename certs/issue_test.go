package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	dir := copyPKI(t)
	ca := mustLoadCert(t, filepath.Join(dir, CAFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, tc := range []struct {
		name     string
		purpose  Purpose
		file     string
		cn       string
		dns, ips []string
		eku      x509.ExtKeyUsage
	}{
		{"gp-system.example.nhs.uk", Client, "gp-system.example.nhs.uk", "gp-system.example.nhs.uk", []string{"gp-system.example.nhs.uk"}, nil, x509.ExtKeyUsageClientAuth},
		{"provider.example", Server, "provider.example", "provider.example", []string{"provider.example"}, nil, x509.ExtKeyUsageServerAuth},
		{"10.1.2.3", Server, "10.1.2.3", "", nil, []string{"10.1.2.3"}, x509.ExtKeyUsageServerAuth},
		{"::1", Client, "__1", "", nil, []string{"::1"}, x509.ExtKeyUsageClientAuth},
		{"*.apps.localhost", Server, "_wildcard.apps.localhost", "*.apps.localhost", []string{"*.apps.localhost"}, nil, x509.ExtKeyUsageServerAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPath, keyPath, err := Issue(dir, tc.name, IssueOptions{Purpose: tc.purpose})
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tc.file+".pem"); certPath != want {
				t.Errorf("cert path = %q, want %q", certPath, want)
			}
			if want := filepath.Join(dir, tc.file+"-key.pem"); keyPath != want {
				t.Errorf("key path = %q, want %q", keyPath, want)
			}
			for path, mode := range map[string]os.FileMode{certPath: 0o644, keyPath: 0o600} {
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != mode {
					t.Errorf("%s mode = %o, want %o", path, info.Mode().Perm(), mode)
				}
			}
			pair, err := LoadKeyPair(certPath, keyPath)
			if err != nil {
				t.Fatal(err)
			}
			leaf := pair.Leaf
			checkLeafNames(t, leaf, tc.cn, tc.dns, tc.ips)
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{tc.eku}) {
				t.Errorf("EKU = %v, want only %v", leaf.ExtKeyUsage, tc.eku)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.eku}}); err != nil {
				t.Errorf("does not verify against ca.pem: %v", err)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life != leafValidity+backdate {
				t.Errorf("lifetime = %s, want %s", life, leafValidity+backdate)
			}
		})
	}
}

func TestIssueOverwrite(t *testing.T) {
	dir := copyPKI(t)
	certPath, keyPath, err := Issue(dir, "app.localhost", IssueOptions{Purpose: Client})
	if err != nil {
		t.Fatal(err)
	}
	first := mustLoadCert(t, certPath)
	firstKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = Issue(dir, "app.localhost", IssueOptions{Purpose: Client})
	wantErrContaining(t, err, certPath, keyPath, "--force")
	if !mustLoadCert(t, certPath).Equal(first) {
		t.Error("a refused Issue replaced the certificate")
	}

	if _, _, err := Issue(dir, "app.localhost", IssueOptions{Purpose: Server, Force: true}); err != nil {
		t.Fatal(err)
	}
	second := mustLoadCert(t, certPath)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Errorf("reissued certificate kept serial %s", serialHex(first.SerialNumber))
	}
	if !slices.Equal(second.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("forced reissue EKU = %v, want server auth", second.ExtKeyUsage)
	}
	secondKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(secondKey) == string(firstKey) {
		t.Error("forced reissue kept the old key")
	}
	if _, err := LoadKeyPair(certPath, keyPath); err != nil {
		t.Errorf("reissued pair does not match: %v", err)
	}
}

func TestIssueValidity(t *testing.T) {
	dir := copyPKI(t)
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	certPath, _, err := Issue(dir, "expired.localhost", IssueOptions{Purpose: Client, NotBefore: notBefore, NotAfter: notAfter, KeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	c := mustLoadCert(t, certPath)
	if !c.NotBefore.Equal(notBefore) || !c.NotAfter.Equal(notAfter) {
		t.Errorf("validity %s..%s, want %s..%s", c.NotBefore, c.NotAfter, notBefore, notAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(mustLoadCert(t, filepath.Join(dir, CAFile)))
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("an expired certificate verifies")
	}
}

func TestIssueRefuses(t *testing.T) {
	dir := copyPKI(t)
	for _, tc := range []struct {
		test, name string
		opt        IssueOptions
		want       string
	}{
		{"no purpose", "a.localhost", IssueOptions{}, "neither client nor server"},
		{"unknown purpose", "a.localhost", IssueOptions{Purpose: 7}, "7"},
		{"empty name", "", IssueOptions{Purpose: Client}, "empty"},
		{"path separator", "../escape", IssueOptions{Purpose: Client}, `"../escape"`},
		{"slash", "a/b", IssueOptions{Purpose: Client}, `"a/b"`},
		{"space", "a b", IssueOptions{Purpose: Client}, `"a b"`},
		{"would overwrite the ca", "ca", IssueOptions{Purpose: Server, Force: true}, "dev PKI"},
		{"would overwrite consumer.pem", "consumer", IssueOptions{Purpose: Client, Force: true}, "dev PKI"},
		{"not-after before not-before", "a.localhost", IssueOptions{Purpose: Client, NotBefore: time.Now(), NotAfter: time.Now().Add(-time.Hour)}, "not-after"},
		{"negative key size", "a.localhost", IssueOptions{Purpose: Client, KeyBits: -2048}, "-2048"},
	} {
		t.Run(tc.test, func(t *testing.T) {
			before := readAll(t, dir)
			_, _, err := Issue(dir, tc.name, tc.opt)
			wantErrContaining(t, err, tc.want)
			if !mapsEqual(before, readAll(t, dir)) {
				t.Error("a refused Issue changed the directory")
			}
		})
	}
	t.Run("no ca", func(t *testing.T) {
		empty := t.TempDir()
		_, _, err := Issue(empty, "a.localhost", IssueOptions{Purpose: Client})
		wantErrContaining(t, err, filepath.Join(empty, CAFile))
	})
	t.Run("ca key does not match", func(t *testing.T) {
		mixed := copyPKI(t)
		copyFile(t, filepath.Join(foreignPKI(t), CAKeyFile), filepath.Join(mixed, CAKeyFile), 0o600)
		_, _, err := Issue(mixed, "a.localhost", IssueOptions{Purpose: Client})
		wantErrContaining(t, err, filepath.Join(mixed, CAKeyFile), "does not hold the key")
	})
}
