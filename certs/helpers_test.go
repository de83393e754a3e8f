package certs

import (
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sharedPKI is one dev PKI made by TestMain with the default options; tests read it or copy it
// with copyPKI, because RSA key generation under -race is too slow to repeat per test. It is
// written once before any test runs and never changed.
var sharedPKI string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "sspemu-certs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	sharedPKI = filepath.Join(tmp, "pki")
	start := time.Now()
	if err := Init(sharedPKI, false, Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "make shared pki:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "shared pki made in %s\n", time.Since(start))
	}
	return m.Run()
}

// copyPKI copies the shared PKI into a fresh directory of t, keeping file modes, for tests that
// change files.
func copyPKI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(sharedPKI)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(sharedPKI, e.Name()), filepath.Join(dir, e.Name()), info.Mode().Perm())
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustLoadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := LoadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustLoadCRL(t *testing.T, dir string) *x509.RevocationList {
	t.Helper()
	crl, err := loadCRL(filepath.Join(dir, CRLFile), mustLoadCert(t, filepath.Join(dir, CAFile)))
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(b)
	}
	return got
}

// wantErrContaining fails t unless err is non-nil and mentions every one of parts.
func wantErrContaining(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// foreignPKI makes a second, unrelated PKI (small keys: only its foreignness matters).
func foreignPKI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "foreign")
	if err := Init(dir, false, Options{KeyBits: 1024}); err != nil {
		t.Fatal(err)
	}
	return dir
}
