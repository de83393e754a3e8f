package demonstrator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// testPKI is a CA made for one test, with helpers to issue leaves.
type testPKI struct {
	t    testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "demonstrator test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{t: t, cert: cert, key: key, pool: pool}
}

func randomSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// leaf issues a server or client certificate for name.
func (p *testPKI) leaf(name string, client bool) tls.Certificate {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(p.t),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if !client {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *testPKI) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, MaxConnsPerHost: 20}, Timeout: 30 * time.Second}
}

// startTLS serves h over HTTPS with the production TLS configuration.
func startTLS(t testing.TB, p *testPKI, h http.Handler, requireName string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = ServerTLSConfig(p.leaf("localhost", false), p.pool, requireName)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func sendOver(t testing.TB, client *http.Client, srv *httptest.Server, c call) (*http.Response, error) {
	t.Helper()
	var body *strings.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	var r *http.Request
	var err error
	if body != nil {
		r, err = http.NewRequest(c.method, srv.URL+c.path, body)
	} else {
		r, err = http.NewRequest(c.method, srv.URL+c.path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	setHeaders(t, r, c)
	return client.Do(r)
}

func TestServerTLSConfig(t *testing.T) {
	p := newTestPKI(t)
	srv := startTLS(t, p, newTestDemonstrator(t).Handler(), "ssp.sspemu.localhost")
	meta := call{method: "GET", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata}

	ssp := p.leaf("ssp.sspemu.localhost", true)
	other := p.leaf("consumer.sspemu.localhost", true)
	stranger := newTestPKI(t).leaf("ssp.sspemu.localhost", true)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"the SSP's certificate", &ssp, true},
		{"another name from the same CA", &other, false},
		{"the right name from another CA", &stranger, false},
		{"no client certificate", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := sendOver(t, p.client(tc.cert), srv, meta)
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d, want a failed handshake", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("status %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.TLS.NegotiatedProtocol == "h2" {
				t.Errorf("connection state %+v", resp.TLS)
			}
		})
	}

	// TLS 1.1 is refused.
	old := p.client(&ssp)
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	if resp, err := sendOver(t, old, srv, meta); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
	// So is a client that speaks only TLS 1.3, and one with only suites
	// outside the Spine's families; a CBC suite of the AES256 family is
	// served, in TLS 1.2.
	for _, tc := range []struct {
		name   string
		adjust func(*tls.Config)
		ok     bool
	}{
		{"TLS 1.3 only", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, false},
		{"AES128-SHA256 (no AES256, no GCM)", func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}
		}, false},
		{"ECDHE AES256-SHA", func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.client(&ssp)
			tc.adjust(c.Transport.(*http.Transport).TLSClientConfig)
			resp, err := sendOver(t, c, srv, meta)
			if err != nil {
				if tc.ok {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			resp.Body.Close()
			if !tc.ok {
				t.Fatalf("served (%d) over %x", resp.StatusCode, resp.TLS.CipherSuite)
			}
			if resp.TLS.Version != tls.VersionTLS12 {
				t.Errorf("version %x, want TLS 1.2", resp.TLS.Version)
			}
		})
	}
}

// TestServerTLSConfigChecks checks that every extra check (the CRL's, in
// serve) must accept the client's leaf, on resumed sessions too.
func TestServerTLSConfigChecks(t *testing.T) {
	p := newTestPKI(t)
	revoked := p.leaf("ssp.sspemu.localhost", true)
	leaf, err := x509.ParseCertificate(revoked.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	check := func(c *x509.Certificate) error {
		if c.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return errors.New("revoked")
		}
		return nil
	}
	srv := httptest.NewUnstartedServer(newTestDemonstrator(t).Handler())
	srv.TLS = ServerTLSConfig(p.leaf("localhost", false), p.pool, "", check)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	meta := call{method: "GET", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata}
	good := p.leaf("ssp.sspemu.localhost", true)
	resp, err := sendOver(t, p.client(&good), srv, meta)
	if err != nil {
		t.Fatalf("a certificate the check accepts: %v", err)
	}
	resp.Body.Close()
	if resp, err := sendOver(t, p.client(&revoked), srv, meta); err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate the check refuses was served: %d", resp.StatusCode)
	}
}

// TestBookingRace books one slot twenty times at once over real HTTPS, at
// each of two practices at the same time (A20047 in JSON, B82617 half in
// JSON and half in XML): at each, exactly one booking wins and nineteen
// get 409 DUPLICATE_REJECTED, and the store holds one appointment for the
// slot.
func TestBookingRace(t *testing.T) {
	p := newTestPKI(t)
	d := newTwoPractices(t, Options{})
	srv := startTLS(t, p, d.Handler(), "ssp.sspemu.localhost")
	ssp := p.leaf("ssp.sspemu.localhost", true)
	client := p.client(&ssp)
	client.Transport.(*http.Transport).MaxConnsPerHost = 40

	const n = 20
	type result struct {
		status int
		body   string
		err    error
	}
	practices := []testPractice{practiceA, practiceB}
	results := make([][]result, len(practices))
	slots := make([]map[string]any, len(practices))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for k, pr := range practices {
		slot, loc := freeSlotAt(t, d.Handler(), pr, 0)
		slots[k] = slot
		results[k] = make([]result, n)
		body := bookingBody(slot, "Patient/2", loc)
		for i := range n {
			c := pr.call("POST", "/Appointment", gpconnect.CreateAppointment, body)
			if pr == practiceB && i%2 == 1 {
				c = asXML(t, c)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := sendOver(t, client, srv, c)
				if err != nil {
					results[k][i].err = err
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				results[k][i] = result{resp.StatusCode, string(b), err}
			}()
		}
	}
	close(start)
	wg.Wait()
	for k, pr := range practices {
		created, conflicts := 0, 0
		for i, r := range results[k] {
			if r.err != nil {
				t.Fatalf("%s request %d: %v", pr.ods, i, r.err)
			}
			switch r.status {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
				conflicts++
				if !strings.Contains(r.body, gpconnect.CodeDuplicateRejected) {
					t.Errorf("%s: 409 without DUPLICATE_REJECTED: %s", pr.ods, r.body)
				}
			default:
				t.Errorf("%s request %d: status %d %s", pr.ods, i, r.status, r.body)
			}
		}
		if created != 1 || conflicts != n-1 {
			t.Errorf("%s: %d created and %d conflicts, want 1 and %d", pr.ods, created, conflicts, n-1)
		}
		booked := 0
		for _, a := range state(t, d, pr.ods).appts {
			if len(a.SlotIDs) == 1 && a.SlotIDs[0] == slots[k]["id"] {
				booked++
			}
		}
		if booked != 1 {
			t.Errorf("%s: %d appointments hold the slot, want 1", pr.ods, booked)
		}
	}
}
