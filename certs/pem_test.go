package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoaders(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	caPath := filepath.Join(sharedPKI, CAFile)
	consumerKey := filepath.Join(sharedPKI, ConsumerKeyFile)
	providerCert := filepath.Join(sharedPKI, ProviderFile)

	t.Run("LoadCertificate", func(t *testing.T) {
		if _, err := LoadCertificate(caPath); err != nil {
			t.Error(err)
		}
		for _, p := range []string{missing, garbage, consumerKey} {
			_, err := LoadCertificate(p)
			wantErrContaining(t, err, p)
		}
	})
	t.Run("LoadCertPool", func(t *testing.T) {
		bundle := filepath.Join(dir, "bundle.pem")
		var data []byte
		for _, f := range []string{ConsumerKeyFile, CAFile, ProviderFile} {
			b, err := os.ReadFile(filepath.Join(sharedPKI, f))
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		if err := os.WriteFile(bundle, data, 0o644); err != nil {
			t.Fatal(err)
		}
		pool, err := LoadCertPool(bundle)
		if err != nil {
			t.Fatal(err)
		}
		consumer := mustLoadCert(t, filepath.Join(sharedPKI, ConsumerFile))
		if _, err := consumer.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("the ca after a key block in the bundle is not in the pool: %v", err)
		}
		for _, p := range []string{missing, garbage, consumerKey} {
			_, err := LoadCertPool(p)
			wantErrContaining(t, err, p)
		}
	})
	t.Run("LoadKeyPair", func(t *testing.T) {
		_, err := LoadKeyPair(providerCert, consumerKey)
		wantErrContaining(t, err, providerCert, consumerKey)
		_, err = LoadKeyPair(missing, consumerKey)
		wantErrContaining(t, err, missing, consumerKey)
	})
}

func TestParseCertificatePEM(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(sharedPKI, ConsumerFile))
	if err != nil {
		t.Fatal(err)
	}
	want := mustLoadCert(t, filepath.Join(sharedPKI, ConsumerFile))
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"pem", data},
		{"pem after text and a key", append([]byte("subject=...\n"+mustRead(t, filepath.Join(sharedPKI, ConsumerKeyFile))), data...)},
		{"der", want.Raw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCertificatePEM(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Error("parsed a different certificate")
			}
		})
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "neither PEM nor"},
		{"only a key", mustRead(t, filepath.Join(sharedPKI, ConsumerKeyFile)), "no CERTIFICATE"},
		{"bad der in pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "parse certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCertificatePEM([]byte(tc.in))
			wantErrContaining(t, err, tc.want)
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600 even over a 644 file", info.Mode().Perm())
	}
	if got := mustRead(t, path); got != "new" {
		t.Errorf("content = %q", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temporary files left)", len(entries))
	}

	// A failed write leaves no temporary file and names the path.
	err = writeFileAtomic(filepath.Join(dir, "no-such-dir", "x.pem"), []byte("x"), 0o600)
	wantErrContaining(t, err, filepath.Join(dir, "no-such-dir", "x.pem"))
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("failed write left %d entries", len(entries))
	}
}

// A DER certificate ends with its signature, whose last byte is random: in
// about one certificate in forty it is a byte bytes.TrimSpace would cut.
func TestParseCertificatePEMDERWithSpaceLastByte(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "der.sspemu.localhost"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	for i := 0; ; i++ {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		if last := der[len(der)-1]; !bytes.ContainsRune([]byte(" \t\n\v\f\r"), rune(last)) {
			if i > 5000 {
				t.Fatal("no certificate ending in a space byte after 5000 tries")
			}
			continue
		}
		got, err := ParseCertificatePEM(der)
		if err != nil {
			t.Fatalf("DER ending in %#x: %v", der[len(der)-1], err)
		}
		if !bytes.Equal(got.Raw, der) {
			t.Error("parsed a different certificate")
		}
		withNewline, err := ParseCertificatePEM(append(der, '\n'))
		if err != nil || !bytes.Equal(withNewline.Raw, der) {
			t.Errorf("DER with a trailing newline: %v", err)
		}
		return
	}
}
