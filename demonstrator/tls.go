package demonstrator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ServerTLSConfig is the demonstrator's listener configuration, a GP
// Connect provider's: exactly TLS 1.2 (the specification's version; a
// client offering only 1.3 is refused, and so are the suites without
// forward secrecy), the Spine's cipher families as Go offers them (those
// of proxy.SpineCipherSuites: no DHE and no ECDHE AES256-SHA384 exist in
// crypto/tls), a client certificate required and verified against
// clientCAs, and, when requireClientName is set, a leaf whose CN or DNS SAN
// is that name. Each of checks (the CRL's, say) must also accept the leaf.
// They run in VerifyConnection, so on resumed sessions too, where
// VerifyPeerCertificate would be skipped. HTTP/2 is not offered: the
// provider leg is HTTP/1.1.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool, requireClientName string, checks ...func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		},
		NextProtos: []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate: the demonstrator accepts only the SSP's")
			}
			if requireClientName != "" {
				if err := checkClientName(cs.PeerCertificates, requireClientName); err != nil {
					return err
				}
			}
			for _, check := range checks {
				if err := check(cs.PeerCertificates[0]); err != nil {
					return err
				}
			}
			return nil
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
