package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkProviderLeg compares the two candidates for the engine's one
// http.RoundTripper on the same static mutual-TLS provider, 8 requests per
// core at once, each answer read to its end as the engine does: the SSP's
// pool (upstream.go) and an http.Transport tuned for the same job (keep-alive
// HTTP/1.1 only, as many idle connections as callers, no compression, no
// proxy). Read the CPU per request as ns/op times GOMAXPROCS; the pool is
// kept because it costs less (README, Performance).
func BenchmarkProviderLeg(b *testing.B) {
	root := benchProvider(b)
	cfg := Config{TLS: TLSConfig{MinVersion: "1.2"}}
	cfg.ResolvePKI(pkiDir)
	clientTLS, err := cfg.ClientTLS()
	if err != nil {
		b.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	legs := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"pool", newUpstream(clientTLS, dialer.DialContext, 30*time.Second)},
		{"transport", &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       clientTLS.Clone(),
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			DisableCompression:    true,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     false,
			TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		}},
	}
	target, err := url.Parse(root + "/metadata")
	if err != nil {
		b.Fatal(err)
	}
	for _, leg := range legs {
		b.Run(leg.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := (&http.Request{Method: http.MethodGet, URL: target, Host: target.Host,
						Header: http.Header{"Accept": {"application/fhir+json"}}}).WithContext(context.Background())
					resp, err := leg.rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
