package demonstrator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ServerTLSConfig is the demonstrator's listener configuration: TLS 1.2 or
// later with forward-secret AEAD suites, a client certificate required and
// verified against clientCAs, and, when requireClientName is set, a leaf
// whose CN or DNS SAN is that name. The name check sits in VerifyConnection
// so that it runs on resumed sessions too, where VerifyPeerCertificate
// would be skipped. HTTP/2 is not offered: the provider leg is HTTP/1.1.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool, requireClientName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		},
		NextProtos: []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if requireClientName == "" {
				return nil
			}
			return checkClientName(cs.PeerCertificates, requireClientName)
		},
	}
}

func checkClientName(chain []*x509.Certificate, name string) error {
	if len(chain) == 0 {
		return errors.New("no client certificate: the demonstrator accepts only the SSP's")
	}
	leaf := chain[0]
	if strings.EqualFold(leaf.Subject.CommonName, name) ||
		slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
		return nil
	}
	return fmt.Errorf("client certificate %q (DNS names %q) is not the SSP's %q", leaf.Subject.CommonName, leaf.DNSNames, name)
}
