package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
)

// BenchmarkParseTarget measures the target step on the prefix form.
func BenchmarkParseTarget(b *testing.B) {
	uri := "/https://localhost:9443/A20047/STU3/1/gpconnect/Slot?start=ge2025-01-06&end=le2025-01-13&status=free&_include=Slot:schedule"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTarget(uri); err != nil {
			b.Fatal(err)
		}
	}
}

// benchProvider is a static mutual-TLS provider answering 245 bytes of
// FHIR JSON, so the chain's own cost is what the benchmark sees.
func benchProvider(b *testing.B) string {
	b.Helper()
	cert, err := certs.LoadKeyPair(pki(certs.ProviderFile), pki(certs.ProviderKeyFile))
	if err != nil {
		b.Fatal(err)
	}
	pool, err := certs.LoadCertPool(pki(certs.CAFile))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"resourceType":"CapabilityStatement","version":"1.2.7","name":"GP Connect","status":"active",` +
		`"date":"2024-01-01","publisher":"sspemu bench","kind":"capability","fhirVersion":"3.0.1",` +
		`"format":["application/fhir+json"],"rest":[{"mode":"server"}]}`)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
		w.Write(body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	b.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "https://localhost:" + port + "/A20047/STU3/1/gpconnect"
}

// benchWriter is a reusable ResponseWriter that keeps nothing.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) Flush()                      {}

// BenchmarkChain runs the SSP's whole request path in process (scope,
// method, target, Ssp-* headers, registry decision, JWT rules, interaction
// route, audit record, forwarding over mutual TLS to a static provider,
// transaction record) with the consumer's TLS state attached as the
// listener would, and reports allocations per request. "refused-at-route"
// passes every check but the last, so it is the checks and the audit
// without the provider leg. "parallel" runs 8 requests per core at once
// so the audit's group commit batches them.
func BenchmarkChain(b *testing.B) {
	root := benchProvider(b)
	table, err := registry(root).Build()
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := certs.LoadCertificate(pki(certs.ConsumerFile))
	if err != nil {
		b.Fatal(err)
	}
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	hdr := validHeaders(in, root)
	for _, bc := range []struct {
		name, sync, path string
		want             int
		parallel         bool
	}{
		{"forwarded/sync=batch", audit.SyncBatch, "/metadata", http.StatusOK, false},
		{"forwarded/sync=none", audit.SyncNone, "/metadata", http.StatusOK, false},
		{"refused-at-route/sync=none", audit.SyncNone, "/Patient/1", http.StatusBadRequest, false},
		{"parallel/forwarded/sync=batch", audit.SyncBatch, "/metadata", http.StatusOK, true},
		{"parallel/forwarded/sync=none", audit.SyncNone, "/metadata", http.StatusOK, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store, err := audit.Open(b.TempDir(), audit.Options{Sync: bc.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			srv, err := New(Options{Config: testConfig(), Registry: func() *agreements.Table { return table }, Audit: store})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown(b.Context())
			h := srv.Handler()
			state := &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12,
				PeerCertificates: []*x509.Certificate{leaf}}
			one := func(w *benchWriter) error {
				r := httptest.NewRequest(http.MethodGet, "/"+root+bc.path, nil)
				r.TLS = state
				r.RemoteAddr = "127.0.0.1:40000"
				for k, v := range hdr {
					r.Header[k] = v
				}
				clear(w.h)
				w.status = 0
				h.ServeHTTP(w, r)
				if w.status != bc.want && !(w.status == 0 && bc.want == http.StatusOK) {
					return fmt.Errorf("status %d, want %d (%s)", w.status, bc.want, w.h.Get("Sspemu-Reason"))
				}
				return nil
			}
			if err := one(&benchWriter{h: http.Header{}}); err != nil { // opens the provider connection
				b.Fatal(err)
			}
			b.ReportAllocs()
			if bc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					w := &benchWriter{h: http.Header{}}
					for pb.Next() {
						if err := one(w); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			w := &benchWriter{h: http.Header{}}
			for b.Loop() {
				if err := one(w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
