package certs

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInitFilesAndModes(t *testing.T) {
	info, err := os.Stat(sharedPKI)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("pki directory mode = %o, want 700", got)
	}
	entries, err := os.ReadDir(sharedPKI)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := slices.Sorted(slices.Values(Files()))
	if !slices.Equal(names, want) {
		t.Errorf("files = %q, want exactly %q (no temporary leftovers)", names, want)
	}
	for _, tc := range []struct {
		file    string
		mode    os.FileMode
		pemType string
	}{
		{CAFile, 0o644, "CERTIFICATE"},
		{CAKeyFile, 0o600, "PRIVATE KEY"},
		{SSPServerFile, 0o644, "CERTIFICATE"},
		{SSPServerKeyFile, 0o600, "PRIVATE KEY"},
		{SSPClientFile, 0o644, "CERTIFICATE"},
		{SSPClientKeyFile, 0o600, "PRIVATE KEY"},
		{ConsumerFile, 0o644, "CERTIFICATE"},
		{ConsumerKeyFile, 0o600, "PRIVATE KEY"},
		{ProviderFile, 0o644, "CERTIFICATE"},
		{ProviderKeyFile, 0o600, "PRIVATE KEY"},
		{CRLFile, 0o644, "X509 CRL"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(sharedPKI, tc.file)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode().Perm(); got != tc.mode {
				t.Errorf("mode = %o, want %o", got, tc.mode)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			block, rest := pem.Decode(data)
			if block == nil || block.Type != tc.pemType {
				t.Fatalf("first PEM block = %v, want type %q", block, tc.pemType)
			}
			if len(strings.TrimSpace(string(rest))) != 0 {
				t.Errorf("unexpected data after the PEM block: %q", rest)
			}
		})
	}
}

func TestInitCA(t *testing.T) {
	ca := mustLoadCert(t, filepath.Join(sharedPKI, CAFile))
	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Error("ca.pem is not a CA certificate")
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want {
		t.Errorf("ca key usage = %v, want %v", ca.KeyUsage, want)
	}
	if !strings.HasPrefix(ca.Subject.CommonName, "sspemu development CA") {
		t.Errorf("ca CN = %q", ca.Subject.CommonName)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("ca is not self-signed: %v", err)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 10*365*24*time.Hour || life > 11*366*24*time.Hour {
		t.Errorf("ca lifetime = %s, want about 10 years", life)
	}
	if bits := ca.PublicKey.(*rsa.PublicKey).N.BitLen(); bits != 2048 {
		t.Errorf("ca key = %d bits, want 2048", bits)
	}
	key, err := loadPrivateKey(filepath.Join(sharedPKI, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(*rsa.PublicKey).Equal(ca.PublicKey) {
		t.Error("ca-key.pem does not match ca.pem")
	}
}

func TestInitLeaves(t *testing.T) {
	ca := mustLoadCert(t, filepath.Join(sharedPKI, CAFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	localhostIPs := []string{"127.0.0.1", "::1"}
	for _, tc := range []struct {
		cert, key string
		eku       x509.ExtKeyUsage
		cn        string
		dns       []string
		ips       []string
	}{
		{SSPServerFile, SSPServerKeyFile, x509.ExtKeyUsageServerAuth, "localhost", []string{"localhost"}, localhostIPs},
		{ProviderFile, ProviderKeyFile, x509.ExtKeyUsageServerAuth, "localhost", []string{"localhost"}, localhostIPs},
		{SSPClientFile, SSPClientKeyFile, x509.ExtKeyUsageClientAuth, SSPClientFQDN, []string{SSPClientFQDN}, nil},
		{ConsumerFile, ConsumerKeyFile, x509.ExtKeyUsageClientAuth, DefaultConsumerFQDN, []string{DefaultConsumerFQDN}, nil},
	} {
		t.Run(tc.cert, func(t *testing.T) {
			pair, err := LoadKeyPair(filepath.Join(sharedPKI, tc.cert), filepath.Join(sharedPKI, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			leaf := pair.Leaf
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{tc.eku}) {
				t.Errorf("EKU = %v, want only %v", leaf.ExtKeyUsage, tc.eku)
			}
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; leaf.KeyUsage != want {
				t.Errorf("key usage = %v, want %v", leaf.KeyUsage, want)
			}
			checkLeafNames(t, leaf, tc.cn, tc.dns, tc.ips)
			if bits := leaf.PublicKey.(*rsa.PublicKey).N.BitLen(); bits != 2048 {
				t.Errorf("key = %d bits, want 2048", bits)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.eku}}); err != nil {
				t.Errorf("does not verify against ca.pem for its purpose: %v", err)
			}
			other := x509.ExtKeyUsageClientAuth
			if tc.eku == other {
				other = x509.ExtKeyUsageServerAuth
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{other}}); err == nil {
				t.Errorf("verifies for %v as well; want it refused", other)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life != leafValidity+backdate {
				t.Errorf("lifetime = %s, want %s", life, leafValidity+backdate)
			}
		})
	}
}

func TestSerialsRandomAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, f := range []string{CAFile, SSPServerFile, SSPClientFile, ConsumerFile, ProviderFile} {
		c := mustLoadCert(t, filepath.Join(sharedPKI, f))
		// A random 128-bit serial is shorter than 65 bits with probability 2^-64.
		if n := c.SerialNumber.BitLen(); n <= 64 || n > 128 {
			t.Errorf("%s serial has %d bits, want a random 128-bit number", f, n)
		}
		if prev, ok := seen[c.SerialNumber.String()]; ok {
			t.Errorf("%s and %s share serial %s", prev, f, serialHex(c.SerialNumber))
		}
		seen[c.SerialNumber.String()] = f
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	for _, existing := range []string{CAFile, ConsumerKeyFile, CRLFile} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, existing)
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Init(dir, false, Options{})
			wantErrContaining(t, err, path, "--force")
			got := readAll(t, dir)
			if len(got) != 1 || got[existing] != "keep me" {
				t.Errorf("after refusal the directory holds %d files (%q = %q); want only the untouched %s", len(got), existing, got[existing], existing)
			}
		})
	}
	t.Run("names every existing file", func(t *testing.T) {
		dir := copyPKI(t)
		before := readAll(t, dir)
		err := Init(dir, false, Options{})
		wantErrContaining(t, err, filepath.Join(dir, CAFile), filepath.Join(dir, ProviderKeyFile), filepath.Join(dir, CRLFile))
		if after := readAll(t, dir); !mapsEqual(before, after) {
			t.Error("a refused Init changed files")
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestInitForce(t *testing.T) {
	dir := copyPKI(t)
	before := readAll(t, dir)
	if err := Init(dir, true, Options{KeyBits: 1024}); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, dir)
	for _, f := range Files() {
		if before[f] == after[f] {
			t.Errorf("%s was not replaced", f)
		}
	}
	if len(after) != len(Files()) {
		t.Errorf("%d files after forced Init, want %d", len(after), len(Files()))
	}
	// The new leaves chain to the new CA, not the old one.
	ca := mustLoadCert(t, filepath.Join(dir, CAFile))
	if err := mustLoadCert(t, filepath.Join(dir, ConsumerFile)).CheckSignatureFrom(ca); err != nil {
		t.Errorf("consumer.pem is not signed by the new ca: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("replaced ca-key.pem mode = %o, want 600", info.Mode().Perm())
	}
}

func TestInitOptions(t *testing.T) {
	t.Run("consumer FQDN and key size", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		if err := Init(dir, false, Options{ConsumerFQDN: "gp-system.example.nhs.uk", KeyBits: 1024}); err != nil {
			t.Fatal(err)
		}
		c := mustLoadCert(t, filepath.Join(dir, ConsumerFile))
		if c.Subject.CommonName != "gp-system.example.nhs.uk" || !slices.Equal(c.DNSNames, []string{"gp-system.example.nhs.uk"}) {
			t.Errorf("consumer CN %q, SANs %q", c.Subject.CommonName, c.DNSNames)
		}
		if bits := c.PublicKey.(*rsa.PublicKey).N.BitLen(); bits != 1024 {
			t.Errorf("key = %d bits, want 1024", bits)
		}
	})
	for _, tc := range []struct {
		name string
		opt  Options
		want string
	}{
		{"FQDN with slash", Options{ConsumerFQDN: "a/b"}, `"a/b"`},
		{"FQDN with empty label", Options{ConsumerFQDN: "a..b"}, `"a..b"`},
		{"FQDN with leading hyphen", Options{ConsumerFQDN: "-a.b"}, `"-a.b"`},
		{"negative key size", Options{KeyBits: -1}, "-1"},
		{"tiny key", Options{KeyBits: 512}, "512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			wantErrContaining(t, Init(dir, false, tc.opt), tc.want)
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("a failed Init created %s", dir)
			}
		})
	}
}

func TestEnsure(t *testing.T) {
	t.Run("empty directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "pki")
		created, err := Ensure(dir, Options{KeyBits: 1024})
		if err != nil || !created {
			t.Fatalf("Ensure = %v, %v; want true, nil", created, err)
		}
		if got := readAll(t, dir); len(got) != len(Files()) {
			t.Errorf("%d files, want %d", len(got), len(Files()))
		}
		created, err = Ensure(dir, Options{})
		if err != nil || created {
			t.Errorf("second Ensure = %v, %v; want false, nil", created, err)
		}
	})
	t.Run("complete", func(t *testing.T) {
		dir := copyPKI(t)
		before := readAll(t, dir)
		created, err := Ensure(dir, Options{})
		if err != nil || created {
			t.Fatalf("Ensure = %v, %v; want false, nil", created, err)
		}
		if !mapsEqual(before, readAll(t, dir)) {
			t.Error("Ensure changed a complete PKI")
		}
	})
	t.Run("partial", func(t *testing.T) {
		dir := copyPKI(t)
		for _, f := range []string{ConsumerFile, ProviderKeyFile} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, CRLFile), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		created, err := Ensure(dir, Options{})
		if created {
			t.Error("created = true for an existing PKI")
		}
		wantErrContaining(t, err, filepath.Join(dir, ConsumerFile), filepath.Join(dir, ProviderKeyFile), filepath.Join(dir, CRLFile), "certs init --force")
		if err != nil && strings.Contains(err.Error(), filepath.Join(dir, ConsumerKeyFile)) {
			t.Errorf("error names %s, which is present: %v", ConsumerKeyFile, err)
		}
		if _, statErr := os.Stat(filepath.Join(dir, ConsumerFile)); !os.IsNotExist(statErr) {
			t.Error("Ensure recreated a missing file of an existing PKI")
		}
	})
	t.Run("stray files without ca.pem", func(t *testing.T) {
		dir := t.TempDir()
		stray := filepath.Join(dir, SSPServerFile)
		if err := os.WriteFile(stray, []byte("user's own"), 0o644); err != nil {
			t.Fatal(err)
		}
		created, err := Ensure(dir, Options{})
		if created {
			t.Error("created = true")
		}
		wantErrContaining(t, err, stray)
		if got := readAll(t, dir); len(got) != 1 {
			t.Errorf("Ensure wrote %d files next to a stray one", len(got)-1)
		}
	})
}

// checkLeafNames checks a leaf's CN and its DNS and IP SANs.
func checkLeafNames(t *testing.T, leaf *x509.Certificate, cn string, dns, ips []string) {
	t.Helper()
	if leaf.Subject.CommonName != cn {
		t.Errorf("CN = %q, want %q", leaf.Subject.CommonName, cn)
	}
	if !slices.Equal(leaf.DNSNames, dns) {
		t.Errorf("DNS SANs = %q, want %q", leaf.DNSNames, dns)
	}
	var got []string
	for _, ip := range leaf.IPAddresses {
		got = append(got, ip.String())
	}
	if !slices.Equal(got, ips) {
		t.Errorf("IP SANs = %q, want %q", got, ips)
	}
}
