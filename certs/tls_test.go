package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
)

// handshake runs a real TLS handshake over loopback TCP and returns each side's error. The client
// reads after its handshake so that a refusal the server sends after the client has finished
// (TLS 1.3 verifies the client certificate last) reaches the client too.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, server)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		buf := make([]byte, 2)
		if _, err := io.ReadFull(tc, buf); err != nil {
			clientErr = err
		}
	}
	return <-done, clientErr
}

func TestHandshake(t *testing.T) {
	dir := copyPKI(t)
	path := func(name string) string { return filepath.Join(dir, name) }
	pool, err := LoadCertPool(path(CAFile))
	if err != nil {
		t.Fatal(err)
	}
	ca := mustLoadCert(t, path(CAFile))
	pair := func(cert, key string) tls.Certificate {
		p, err := LoadKeyPair(path(cert), path(key))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	provider := pair(ProviderFile, ProviderKeyFile)
	consumer := pair(ConsumerFile, ConsumerKeyFile)
	// A client certificate for the very name the client dials, so only its key usage is wrong.
	localCert, localKey, err := Issue(dir, "localhost", IssueOptions{Purpose: Client})
	if err != nil {
		t.Fatal(err)
	}
	localClient, err := LoadKeyPair(localCert, localKey)
	if err != nil {
		t.Fatal(err)
	}
	revokedCert, revokedKey, err := Issue(dir, "revoked.localhost", IssueOptions{Purpose: Client})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := LoadKeyPair(revokedCert, revokedKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := Revoke(dir, revokedCert); err != nil {
		t.Fatal(err)
	}
	checker, err := NewCRLChecker(path(CRLFile), ca)
	if err != nil {
		t.Fatal(err)
	}

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range []struct {
			name                   string
			serverCert, clientCert tls.Certificate
			wantErr                bool
			// usageRefusedBy is the side whose verification must fail for an incompatible key
			// usage, checked through the x509 error rather than its text.
			usageRefusedBy string
			serverErrHas   string
		}{
			{name: "provider serves consumer", serverCert: provider, clientCert: consumer},
			{name: "client certificate as server certificate", serverCert: localClient, clientCert: consumer, wantErr: true, usageRefusedBy: "client"},
			{name: "server certificate as client certificate", serverCert: provider, clientCert: provider, wantErr: true, usageRefusedBy: "server"},
			{name: "revoked client certificate", serverCert: provider, clientCert: revoked, wantErr: true, serverErrHas: serialHex(revoked.Leaf.SerialNumber)},
		} {
			t.Run(tls.VersionName(version)+"/"+tc.name, func(t *testing.T) {
				server := &tls.Config{
					MinVersion:       version,
					MaxVersion:       version,
					Certificates:     []tls.Certificate{tc.serverCert},
					ClientAuth:       tls.RequireAndVerifyClientCert,
					ClientCAs:        pool,
					VerifyConnection: checker.VerifyConnection,
				}
				client := &tls.Config{
					MinVersion:   version,
					MaxVersion:   version,
					ServerName:   "localhost",
					RootCAs:      pool,
					Certificates: []tls.Certificate{tc.clientCert},
				}
				serverErr, clientErr := handshake(t, server, client)
				if !tc.wantErr {
					if serverErr != nil || clientErr != nil {
						t.Fatalf("handshake failed: server: %v; client: %v", serverErr, clientErr)
					}
					return
				}
				// A refusal by one side reaches the other as an alert, so both must fail.
				if serverErr == nil || clientErr == nil {
					t.Fatalf("handshake was not refused on both sides: server: %v; client: %v", serverErr, clientErr)
				}
				switch tc.usageRefusedBy {
				case "client":
					wantIncompatibleUsage(t, clientErr)
				case "server":
					wantIncompatibleUsage(t, serverErr)
				}
				if tc.serverErrHas != "" {
					wantErrContaining(t, serverErr, tc.serverErrHas)
				}
			})
		}
	}
}

func wantIncompatibleUsage(t *testing.T, err error) {
	t.Helper()
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.IncompatibleUsage {
		t.Errorf("error %v is not an x509 incompatible key usage error", err)
	}
}

// TestVerifyConnectionRequiresCertificate: the CRL check fails closed on a
// connection without a client certificate, even where tls.Config would let
// one through.
func TestVerifyConnectionRequiresCertificate(t *testing.T) {
	dir := copyPKI(t)
	path := func(name string) string { return filepath.Join(dir, name) }
	pool, err := LoadCertPool(path(CAFile))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := LoadKeyPair(path(ProviderFile), path(ProviderKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	checker, err := NewCRLChecker(path(CRLFile), mustLoadCert(t, path(CAFile)))
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{
		Certificates:     []tls.Certificate{provider},
		ClientAuth:       tls.VerifyClientCertIfGiven,
		ClientCAs:        pool,
		VerifyConnection: checker.VerifyConnection,
	}
	client := &tls.Config{ServerName: "localhost", RootCAs: pool}
	serverErr, clientErr := handshake(t, server, client)
	if clientErr == nil {
		t.Fatal("a client without a certificate was let in")
	}
	wantErrContaining(t, serverErr, "no client certificate")
}
