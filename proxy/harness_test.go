package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
)

// pkiDir is one dev PKI made for the whole package run (TestMain).
var pkiDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sspemu-proxy-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := certs.Init(dir, false, certs.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pkiDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func pki(name string) string { return filepath.Join(pkiDir, name) }

const (
	consumerASID = "200000000359"
	providerASID = "918999198993"
)

// provider is a GP Connect provider for tests: mutual TLS with the dev
// PKI's provider certificate, accepting only the SSP's client certificate.
type provider struct {
	srv  *httptest.Server
	port string
	root string // registered service root
}

// providerPKI is the provider's key pair and the CA pool it verifies
// clients against.
func providerPKI(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert, err := certs.LoadKeyPair(pki(certs.ProviderFile), pki(certs.ProviderKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCertPool(pki(certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return cert, pool
}

// startProvider serves h as a provider; opts adjust the server before it
// starts (a connection-state hook, keep-alives).
func startProvider(t *testing.T, h http.Handler, opts ...func(*httptest.Server)) *provider {
	t.Helper()
	cert, pool := providerPKI(t)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.PeerCertificates[0].Subject.CommonName != certs.SSPClientFQDN {
				return fmt.Errorf("not the SSP: %s", cs.PeerCertificates[0].Subject)
			}
			return nil
		},
	}
	for _, o := range opts {
		o(srv)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return &provider{srv: srv, port: port, root: "https://localhost:" + port + "/A20047/STU3/1/gpconnect"}
}

// registry is the default registry with the provider at root.
func registry(root string) agreements.Config {
	return agreements.Config{
		Systems: []agreements.SystemConfig{
			{ASID: consumerASID, Name: "Example consumer", ODS: "Y12345", PartyKey: "Y12345-0000001",
				FQDN: certs.DefaultConsumerFQDN, Sends: []string{"foundations", "appointments"}},
			{ASID: providerASID, Name: "Provider", ODS: "A20047", PartyKey: "A20047-0000002",
				FQDN: "localhost", Endpoint: root, CPAID: "S20001A000002", Receives: []string{"foundations", "appointments"}},
		},
		Agreements: []agreements.AgreementConfig{
			{From: consumerASID, To: providerASID, Interactions: []string{"foundations", "appointments"}},
		},
	}
}

func testConfig() Config {
	c := Config{
		Listen:           "127.0.0.1:0",
		TLS:              TLSConfig{MinVersion: "1.2"},
		Fidelity:         "spec",
		JWT:              ModeEnforce,
		InteractionRoute: ModeEnforce,
		UpstreamTimeout:  30 * time.Second,
		JWTSkew:          300 * time.Second,
	}
	c.ResolvePKI(pkiDir)
	return c
}

// ssp is a running SSP on a random port.
type ssp struct {
	srv   *Server
	base  string // https://127.0.0.1:port
	addr  string
	store *audit.Store
	dir   string
}

// startSSP runs an SSP for cfg and reg on a free port until the test ends;
// opts adjust its Options (an observer, metrics, a logger) before New.
func startSSP(t *testing.T, cfg Config, reg agreements.Config, opts ...func(*Options)) *ssp {
	t.Helper()
	table, err := reg.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := audit.Open(dir, audit.Options{Sync: audit.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Config: cfg, Registry: func() *agreements.Table { return table }, Audit: store}
	for _, opt := range opts {
		opt(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		store.Close()
	})
	return &ssp{srv: srv, base: "https://" + ln.Addr().String(), addr: ln.Addr().String(), store: store, dir: dir}
}

// consumerTLS is the default consumer's client side of the SSP.
func consumerTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := certs.LoadKeyPair(pki(certs.ConsumerFile), pki(certs.ConsumerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCertPool(pki(certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func consumerClient(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: consumerTLS(t), DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// validHeaders are the headers of a request that passes every check.
func validHeaders(in gpconnect.Interaction, root string) http.Header {
	h := http.Header{}
	h.Set("Ssp-TraceID", uuid.NewString())
	h.Set("Ssp-From", consumerASID)
	h.Set("Ssp-To", providerASID)
	h.Set("Ssp-InteractionID", in.ID)
	h.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, root, time.Now()).Encode())
	h.Set("Accept", gpconnect.MIMEJSON)
	return h
}

func mustLookup(t *testing.T, id string) gpconnect.Interaction {
	t.Helper()
	in, ok := gpconnect.Lookup(id)
	if !ok {
		t.Fatalf("no interaction %s", id)
	}
	return in
}

// rawExchange sends one request exactly as written (request line and all)
// over a fresh consumer TLS connection and reads the answer.
func rawExchange(t *testing.T, addr string, cfg *tls.Config, method, uri string, h http.Header, body string) *http.Response {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial SSP: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, uri, addr)
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read answer to %s %s: %v", method, uri, err)
	}
	return resp
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trap is a TCP listener that counts every connection made to it: a target
// the SSP refuses must never reach it.
type trap struct {
	ln    net.Listener
	port  string
	dials atomic.Int64
	wg    sync.WaitGroup
}

func startTrap(t *testing.T) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{ln: ln}
	_, tr.port, _ = net.SplitHostPort(ln.Addr().String())
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.dials.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); tr.wg.Wait() })
	return tr
}

// otherCA makes a second, unrelated PKI for certificates the SSP must refuse.
func otherCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := certs.Init(dir, false, certs.Options{KeyBits: 2048}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := certs.LoadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
