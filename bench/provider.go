package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"sspemu/certs"
)

// metadataBody is the static provider's answer: a 250-byte FHIR
// CapabilityStatement, the size of a small GP Connect read.
const metadataBody = `{"resourceType":"CapabilityStatement","version":"1.2.7","name":"GP Connect","status":"active",` +
	`"date":"2024-01-01","publisher":"sspemu bench","kind":"capability","fhirVersion":"3.0.1",` +
	`"format":["application/fhir+json"],"rest":[{"mode":"server"}]}`

// provider is the fixed static mTLS provider: no GP Connect logic at all, so
// what a proxy in front of it adds is the proxy's own cost.
type provider struct {
	srv  *http.Server
	addr string // 127.0.0.1:port
	root string // https://localhost:port/A20047/STU3/1/gpconnect
}

func startProvider(pki string) (*provider, error) {
	cert, err := certs.LoadKeyPair(filepath.Join(pki, certs.ProviderFile), filepath.Join(pki, certs.ProviderKeyFile))
	if err != nil {
		return nil, err
	}
	pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(metadataBody)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"application/fhir+json;charset=utf-8"}
		hd["Cache-Control"] = []string{"no-store"}
		hd["Content-Length"] = []string{fmt.Sprint(len(body))}
		w.Write(body)
	})
	p := &provider{
		srv: &http.Server{
			Handler: h,
			TLSConfig: &tls.Config{
				Certificates: []tls.Certificate{cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"http/1.1"},
			},
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		},
		addr: ln.Addr().String(),
	}
	p.root = fmt.Sprintf("https://localhost:%d/A20047/STU3/1/gpconnect", ln.Addr().(*net.TCPAddr).Port)
	go p.srv.ServeTLS(ln, "", "")
	return p, nil
}

func (p *provider) close() { p.srv.Close() }
