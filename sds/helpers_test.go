package sds

import (
	"crypto/tls"
	"path/filepath"
	"sync/atomic"
	"testing"

	"sspemu/agreements"
	"sspemu/certs"
	"sspemu/gpconnect"
)

const (
	consumerASID = "200000000359"
	providerASID = "918999198993"
	providerODS  = "A20047"
	providerKey  = "A20047-0000002"
	providerRoot = "https://localhost:9443/A20047/STU3/1/gpconnect"
)

// testConfig is the embedded default registry: the example consumer and
// the demonstrator practice, with their suppliers.
func testConfig() agreements.Config {
	return agreements.Config{
		Systems: []agreements.SystemConfig{
			{
				ASID: consumerASID, Name: "Example consumer", ODS: "Y12345", PartyKey: "Y12345-0000001",
				FQDN: "consumer.sspemu.localhost", Sends: []string{"foundations", "appointments"}, SupplierODS: "Y90001",
			},
			{
				ASID: providerASID, Name: "GP Connect demonstrator", ODS: providerODS, PartyKey: providerKey,
				FQDN: "localhost", Endpoint: providerRoot, CPAID: "S20001A000002",
				Receives: []string{"foundations", "appointments"}, SupplierODS: "Y90002",
			},
		},
		Agreements: []agreements.AgreementConfig{
			{From: consumerASID, To: providerASID, Interactions: []string{"foundations", "appointments"}},
		},
	}
}

func build(t testing.TB, c agreements.Config) *agreements.Table {
	t.Helper()
	table, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// registry is a swappable table, as serve's hot reload swaps it.
type registry struct {
	p atomic.Pointer[agreements.Table]
}

func newRegistry(t testing.TB, c agreements.Config) *registry {
	r := &registry{}
	r.p.Store(build(t, c))
	return r
}

func (r *registry) load() *agreements.Table { return r.p.Load() }

// secondPractice adds a provider at another ODS code receiving only
// Foundations, for tests that need more than one MHS owner.
func secondPractice(c agreements.Config) agreements.Config {
	c.Systems = append(c.Systems, agreements.SystemConfig{
		ASID: "918999198994", Name: "Second practice", ODS: "B82617", PartyKey: "B82617-0000001",
		FQDN: "localhost", Endpoint: "https://localhost:9443/B82617/STU3/1/gpconnect", CPAID: "S20001A000003",
		Receives: []string{gpconnect.ReadMetadata, gpconnect.SearchPatient},
	})
	return c
}

// pki makes a dev PKI in a temporary directory.
func pki(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := certs.Init(dir, false, certs.Options{KeyBits: 2048}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ldapsConfig is the LDAPS listener's TLS: the SSP's server certificate,
// a client certificate from the dev CA required, exactly TLS 1.2.
func ldapsConfig(t testing.TB, dir string) *tls.Config {
	t.Helper()
	cert, err := certs.LoadKeyPair(filepath.Join(dir, certs.SSPServerFile), filepath.Join(dir, certs.SSPServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCertPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}
}

// consumerTLS is a consumer's client side of LDAPS: the dev CA as roots,
// the consumer certificate when withCert.
func consumerTLS(t testing.TB, dir string, withCert bool) *tls.Config {
	t.Helper()
	pool, err := certs.LoadCertPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	c := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := certs.LoadKeyPair(filepath.Join(dir, certs.ConsumerFile), filepath.Join(dir, certs.ConsumerKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}
