package main

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sspemu/certs"
	"sspemu/gpconnect"
)

// Security.feature (the SSP's client certificate at the provider, sent
// straight to the demonstrator as the suite does) and SSP.feature (the
// consumer's certificate at the SSP, and CORS). TLS is the listener's, not
// a practice's, so these rows run at the first practice only.

// fdnTLSClient is a one-connection client with the given certificate (nil:
// none) trusting the dev CA; adjust may change its TLS settings.
func fdnTLSClient(t *testing.T, s *fdnStack, cert *tls.Certificate, adjust func(*tls.Config)) *http.Client {
	t.Helper()
	pool, err := certs.LoadCertPool(filepath.Join(s.cfg.PKIDir(), certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if adjust != nil {
		adjust(cfg)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func fdnKeyPair(t *testing.T, cert, key string) *tls.Certificate {
	t.Helper()
	pair, err := certs.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

// fdnCertificates are the client certificates of the suite's certificate
// rows, made from the dev PKI at test time.
type fdnCertificates struct {
	expired, otherCA, unknownName *tls.Certificate
	// revokable is issued with the given name and revoked by revoke.
	revokable *tls.Certificate
	revoke    func()
}

// fdnMakeCertificates issues, for name (the SSP's or the consumer's FQDN),
// an expired certificate (a copy of the dev CA signs it), one from another
// CA, one from the dev CA with another name, and one that revoke puts on
// the dev CA's CRL.
func fdnMakeCertificates(t *testing.T, s *fdnStack, name, file string) fdnCertificates {
	t.Helper()
	pki := s.cfg.PKIDir()
	var out fdnCertificates

	caCopy := t.TempDir()
	for _, f := range []string{certs.CAFile, certs.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(pki, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(caCopy, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	cert, key, err := certs.Issue(caCopy, name, certs.IssueOptions{Purpose: certs.Client, NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	out.expired = fdnKeyPair(t, cert, key)

	other := t.TempDir()
	if err := certs.Init(other, false, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	out.otherCA = fdnKeyPair(t, filepath.Join(other, file), filepath.Join(other, strings.TrimSuffix(file, ".pem")+"-key.pem"))

	cert, key, err = certs.Issue(caCopy, "unknown.sspemu.localhost", certs.IssueOptions{Purpose: certs.Client})
	if err != nil {
		t.Fatal(err)
	}
	out.unknownName = fdnKeyPair(t, cert, key)

	cert, key, err = certs.Issue(pki, name, certs.IssueOptions{Purpose: certs.Client, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	out.revokable = fdnKeyPair(t, cert, key)
	out.revoke = func() {
		if err := certs.Revoke(pki, cert); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// fdnRefused sends the metadata read with client and wants the TLS
// handshake refused: the suite's "495, 496 or the connection closed".
func fdnRefused(t *testing.T, r *fdnRun, client *http.Client, direct bool) {
	t.Helper()
	a, err := r.send(t, fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, client: client, direct: direct})
	if err == nil {
		t.Fatalf("served (%d), want the connection refused", a.status)
	}
}

// fdnServed sends the metadata read with client and wants the
// CapabilityStatement; suite, when set, must be the suite negotiated.
func fdnServed(t *testing.T, r *fdnRun, client *http.Client, direct bool, suite uint16) {
	t.Helper()
	a, err := r.send(t, fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, client: client, direct: direct})
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	fdnResource("CapabilityStatement", "")(t, r, a)
	if tlsVersion := a.tls; tlsVersion == nil || tlsVersion.Version != tls.VersionTLS12 || (suite != 0 && tlsVersion.CipherSuite != suite) {
		t.Errorf("connection %+v, want TLS 1.2 with suite %x", tlsVersion, suite)
	}
}

// fdnCipherRows are the suite's cipher rows that Go can express (its
// DHE suites and ECDHE-RSA-AES256-SHA384 do not exist in crypto/tls:
// README, Conformance): three Spine suites are served; AES128-SHA256 and a
// suite without forward secrecy (the suite's NULL-MD5, which Go cannot
// offer) and TLS 1.1 are refused, and at the provider TLS 1.3 alone.
func fdnCipherRows(t *testing.T, s *fdnStack, r *fdnRun, cert *tls.Certificate, direct bool, prefix string) {
	for _, c := range []struct {
		name  string
		suite uint16
	}{
		{"ECDHE-RSA-AES128-GCM-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{"ECDHE-RSA-AES256-GCM-SHA384", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{"ECDHE-RSA-AES256-SHA", tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA},
	} {
		t.Run(prefix+" - Connect with valid Cipher ("+c.name+")", func(t *testing.T) {
			fdnServed(t, r, fdnTLSClient(t, s, cert, func(cfg *tls.Config) {
				cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, []uint16{c.suite}
			}), direct, c.suite)
		})
	}
	for _, c := range []struct {
		name   string
		adjust func(*tls.Config)
	}{
		{"invalid secure Cipher (AES128-SHA256)", func(cfg *tls.Config) {
			cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA256}
		}},
		{"invalid insecure Cipher (AES128-SHA, no forward secrecy)", func(cfg *tls.Config) {
			cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
		}},
		{"TLS 1.1", func(cfg *tls.Config) { cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
	} {
		t.Run(prefix+" - Connect with "+c.name, func(t *testing.T) {
			fdnRefused(t, r, fdnTLSClient(t, s, cert, c.adjust), direct)
		})
	}
	if direct {
		// A GP Connect provider speaks TLS 1.2 (the SSP may allow 1.3, by
		// ssp.tls.min_version).
		t.Run(prefix+" - Connect with TLS 1.3 only", func(t *testing.T) {
			fdnRefused(t, r, fdnTLSClient(t, s, cert, func(cfg *tls.Config) { cfg.MinVersion = tls.VersionTLS13 }), direct)
		})
	}
}

// fdnNonSSL sends plain HTTP to a TLS listener: it must not be served.
// Go's TLS server answers such a request with a 400 page and closes the
// connection; the suite also accepts a closed connection (its own row
// never leaves TLS, README).
func fdnNonSSL(t *testing.T, addr, path string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: application/fhir+json\r\n\r\n")); err != nil {
		return // dropped: as the spec asks
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // closed without an answer
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(resp.Header.Get("Content-Type"), "fhir") {
		t.Errorf("plain HTTP served: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !resp.Close {
		t.Error("the connection stays open after plain HTTP")
	}
}

func fdnSecurity(t *testing.T, s *fdnStack) {
	r := &fdnRun{s: s, p: s.practices[0], format: "json"}
	ssp := fdnKeyPair(t, s.cfg.SSP.ClientCert, s.cfg.SSP.ClientKey)
	made := fdnMakeCertificates(t, s, certs.SSPClientFQDN, certs.SSPClientFile)
	t.Run("Security - Non-SSL to SSL", func(t *testing.T) { fdnNonSSL(t, s.demoAddr, "/"+s.practices[0].ods+"/STU3/1/gpconnect/metadata") })
	t.Run("Security - SSP Client Certificate - Valid", func(t *testing.T) { fdnServed(t, r, fdnTLSClient(t, s, ssp, nil), true, 0) })
	t.Run("Security - SSP Client Certificate - Invalid - Expired", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, made.expired, nil), true) })
	t.Run("Security - SSP Client Certificate - Invalid - FQDN", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, made.unknownName, nil), true) })
	t.Run("Security - SSP Client Certificate - Invalid - Authority", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, made.otherCA, nil), true) })
	t.Run("Security - SSP Client Certificate - Invalid - Revoked", func(t *testing.T) {
		fdnServed(t, r, fdnTLSClient(t, s, made.revokable, nil), true, 0)
		made.revoke()
		fdnRefused(t, r, fdnTLSClient(t, s, made.revokable, nil), true)
	})
	// Suite: exactly HTTP 496. Spec: the provider authenticates the SSP
	// "prior to responding" and drops other connections: refused at the
	// handshake (README, Conformance).
	t.Run("Security - SSP Client Certificate - Missing", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, nil, nil), true) })
	fdnCipherRows(t, s, r, ssp, true, "Security")
}

func fdnSSP(t *testing.T, s *fdnStack) {
	r := &fdnRun{s: s, p: s.practices[0], format: "json"}
	pki := s.cfg.PKIDir()
	consumer := fdnKeyPair(t, filepath.Join(pki, certs.ConsumerFile), filepath.Join(pki, certs.ConsumerKeyFile))
	made := fdnMakeCertificates(t, s, certs.DefaultConsumerFQDN, certs.ConsumerFile)
	t.Run("SSP - Non-SSL to SSL", func(t *testing.T) { fdnNonSSL(t, s.st.addrs["ssp"], "/"+s.practices[0].root+"/metadata") })
	t.Run("SSP - Consumer Client Certificate - Valid", func(t *testing.T) { fdnServed(t, r, fdnTLSClient(t, s, consumer, nil), false, 0) })
	t.Run("SSP - Consumer Client Certificate - Invalid - Authority", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, made.otherCA, nil), false) })
	t.Run("SSP - Consumer Client Certificate - Invalid - Revoked", func(t *testing.T) {
		fdnServed(t, r, fdnTLSClient(t, s, made.revokable, nil), false, 0)
		made.revoke()
		fdnRefused(t, r, fdnTLSClient(t, s, made.revokable, nil), false)
	})
	t.Run("SSP - Consumer Client Certificate - Invalid - Expired", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, made.expired, nil), false) })
	t.Run("SSP - Consumer Client Certificate - Invalid - Missing", func(t *testing.T) { fdnRefused(t, r, fdnTLSClient(t, s, nil, nil), false) })
	// Suite: 495/496 or closed. The certificate is the dev CA's, so the
	// handshake succeeds; the SSP then compares its FQDN with Ssp-From's
	// registered system and refuses with its own 403 (ssp-behaviour §4,
	// README).
	t.Run("SSP - Consumer Client Certificate - Invalid - FQDN", func(t *testing.T) {
		a := r.do(t, fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, client: fdnTLSClient(t, s, made.unknownName, nil)})
		if a.status != http.StatusForbidden || !strings.Contains(string(a.raw), "ASID_CHECK_FAILED_MESSAGESENDER_"+fdnConsumerASID) {
			t.Errorf("%d %s, want 403 ASID_CHECK_FAILED_MESSAGESENDER_%s", a.status, a.raw, fdnConsumerASID)
		}
	})
	fdnCipherRows(t, s, r, consumer, false, "SSP")
	for _, c := range []struct {
		interaction, rel, methods string
	}{
		{gpconnect.SearchOrganization, "/Organization", "GET"},
		{gpconnect.ReadOrganization, "/Organization/1", "GET"},
		{gpconnect.SearchPractitioner, "/Practitioner", "GET"},
		{gpconnect.ReadPractitioner, "/Practitioner/1", "GET"},
		{gpconnect.SearchPatient, "/Patient", "GET"},
		{gpconnect.ReadPatient, "/Patient/1", "GET"},
		{gpconnect.ReadLocation, "/Location/1", "GET"},
		{gpconnect.RegisterPatient, fdnRegisterRel, "POST"},
		{gpconnect.SearchSlot, "/Slot", "GET"},
		{gpconnect.CreateAppointment, "/Appointment", "POST"},
		{gpconnect.SearchPatientAppts, "/Patient/1/Appointment", "GET"},
		{gpconnect.UpdateAppointment, "/Appointment/1", "GET, PUT"},
		{gpconnect.CancelAppointment, "/Appointment/1", "GET, PUT"},
		{gpconnect.ReadAppointment, "/Appointment/1", "GET, PUT"},
		{gpconnect.ReadMetadata, "/metadata", "GET"},
	} {
		in, _ := gpconnect.Lookup(c.interaction)
		t.Run("SSP - CORS ("+in.Name+")", func(t *testing.T) {
			a := r.do(t, fdnCall{method: "OPTIONS", rel: c.rel, interaction: c.interaction, header: map[string]string{
				"Origin": "https://consumer.sspemu.localhost", "Access-Control-Request-Method": strings.Split(c.methods, ",")[0]}})
			if a.status < 200 || a.status > 299 {
				t.Errorf("status %d, want success", a.status)
			}
			got := a.header.Get("Access-Control-Request-Method")
			for _, m := range strings.Split(c.methods, ",") {
				if !strings.Contains(got, strings.TrimSpace(m)) {
					t.Errorf("Access-Control-Request-Method %q lacks %s", got, m)
				}
			}
		})
	}
	// Suite: 400 BAD_REQUEST. The SSP refuses a receiver it does not know
	// itself, as the SSP's error table says (ssp-behaviour §4): 403.
	t.Run("SSP - To ASID - Invalid", func(t *testing.T) {
		a := r.do(t, fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, to: "123456789123"})
		if a.status != http.StatusForbidden || !strings.Contains(string(a.raw), "123456789123") || a.res["resourceType"] != "OperationOutcome" {
			t.Errorf("%d %s, want the SSP's 403 naming the receiver", a.status, a.raw)
		}
	})
}
