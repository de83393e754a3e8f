package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
)

// observer records what the SSP tells the console.
type observer struct {
	journeys   chan *Journey
	handshakes chan *Handshake
}

func newObserver() *observer {
	return &observer{journeys: make(chan *Journey, 64), handshakes: make(chan *Handshake, 64)}
}

func (o *observer) Journey(j *Journey)     { o.journeys <- j }
func (o *observer) Handshake(h *Handshake) { o.handshakes <- h }

// The journey of a request is told before its handler returns, so it is
// there once the answer is read; a refused handshake is told by the
// server's connection goroutine, so the test waits for it (bounded).
func (o *observer) nextJourney(t *testing.T) *Journey {
	t.Helper()
	select {
	case j := <-o.journeys:
		return j
	case <-time.After(30 * time.Second):
		t.Fatal("no journey told to the observer")
	}
	return nil
}

func (o *observer) nextHandshake(t *testing.T) *Handshake {
	t.Helper()
	select {
	case h := <-o.handshakes:
		return h
	case <-time.After(30 * time.Second):
		t.Fatal("no refused handshake told to the observer")
	}
	return nil
}

// handshakeCounter is a Metrics that also counts refused handshakes.
type handshakeCounter struct {
	NopMetrics
	mu     sync.Mutex
	counts map[string]int
}

func (m *handshakeCounter) TLSHandshakeFailure(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[reason]++
}

// observedBy gives startSSP's server an observer, metrics and, when logw
// is not nil, a text log.
func observedBy(obs Observer, m Metrics, logw io.Writer) func(*Options) {
	return func(o *Options) {
		o.Observer, o.Metrics = obs, m
		if logw != nil {
			o.Logger = slog.New(slog.NewTextHandler(logw, nil))
		}
	}
}

// stepVerdicts is "rule=verdict" for each step, in order, with the
// verdict's spaces as underscores ("not_run").
func stepVerdicts(j *Journey) []string {
	var out []string
	for _, s := range j.Steps {
		out = append(out, s.Name+"="+strings.ReplaceAll(s.Verdict, " ", "_"))
	}
	return out
}

func TestJourneyTellsEachRule(t *testing.T) {
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", gpconnect.MIMEJSON)
		w.Write([]byte(`{"resourceType":"CapabilityStatement"}`))
	}))
	obs := newObserver()
	logCfg := testConfig()
	logCfg.JWT = ModeLog
	offCfg := testConfig()
	offCfg.JWT, offCfg.InteractionRoute = ModeOff, ModeOff
	limitCfg := testConfig()
	limitCfg.MaxHeaderFields = 20
	servers := map[string]*ssp{
		"enforce": startSSP(t, testConfig(), registry(p.root), observedBy(obs, nil, nil)),
		"limits":  startSSP(t, limitCfg, registry(p.root), observedBy(obs, nil, nil)),
		"log":     startSSP(t, logCfg, registry(p.root), observedBy(obs, nil, nil)),
		"off":     startSSP(t, offCfg, registry(p.root), observedBy(obs, nil, nil)),
	}
	in := mustLookup(t, gpconnect.ReadMetadata)
	expired := gpconnect.DefaultTokenSpec(in, p.root, time.Now().Add(-time.Hour))

	tests := []struct {
		name     string
		mode     string
		method   string
		edit     func(h http.Header)
		decision gpconnect.Decision
		rule     gpconnect.Rule
		token    string
		steps    string
	}{
		{"forwarded", "enforce", "GET", nil, "forwarded", "", "",
			"tls=passed method=passed target=passed ssp-headers=passed cert-asid=passed sender=passed receiver=passed endpoint=passed " +
				"agreement=passed jwt=passed interaction-route=passed audit=passed upstream=passed provider=passed"},
		{"refused by the receiver rule", "enforce", "GET", func(h http.Header) { h.Set("Ssp-To", "918999198999") }, "refused", "receiver",
			"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_918999198999",
			"tls=passed method=passed target=passed ssp-headers=passed cert-asid=passed sender=passed receiver=failed endpoint=not_run " +
				"agreement=not_run jwt=not_run interaction-route=not_run audit=passed upstream=not_run provider=not_run"},
		{"refused: Ssp-TraceID missing", "enforce", "GET", func(h http.Header) { h.Del("Ssp-TraceID") }, "refused", "ssp-headers", gpconnect.CodeBadRequest,
			"tls=passed method=passed target=passed ssp-headers=failed cert-asid=not_run sender=not_run receiver=not_run endpoint=not_run " +
				"agreement=not_run jwt=not_run interaction-route=not_run audit=passed upstream=not_run provider=not_run"},
		{"refused: expired token", "enforce", "GET", func(h http.Header) { h.Set("Authorization", "Bearer "+expired.Encode()) }, "refused", "jwt", gpconnect.CodeBadRequest,
			"tls=passed method=passed target=passed ssp-headers=passed cert-asid=passed sender=passed receiver=passed endpoint=passed " +
				"agreement=passed jwt=failed interaction-route=not_run audit=passed upstream=not_run provider=not_run"},
		// The limits' refusal is the provider's 431 shape; its body's code
		// reaches the journey, not a guess from the rule and status.
		{"refused: too many header fields", "limits", "GET", func(h http.Header) {
			for i := range 30 {
				h.Set(fmt.Sprintf("X-Extra-%d", i), "x")
			}
		}, "refused", "limits", gpconnect.CodeBadRequest,
			"tls=passed limits=failed method=not_run target=not_run ssp-headers=not_run cert-asid=not_run sender=not_run receiver=not_run endpoint=not_run " +
				"agreement=not_run jwt=not_run interaction-route=not_run audit=passed upstream=not_run provider=not_run"},
		{"expired token, jwt logged only", "log", "GET", func(h http.Header) { h.Set("Authorization", "Bearer "+expired.Encode()) }, "forwarded", "", "",
			"tls=passed method=passed target=passed ssp-headers=passed cert-asid=passed sender=passed receiver=passed endpoint=passed " +
				"agreement=passed jwt=logged_only interaction-route=passed audit=passed upstream=passed provider=passed"},
		{"jwt and route off", "off", "GET", func(h http.Header) { h.Set("Authorization", "Bearer "+expired.Encode()) }, "forwarded", "", "",
			"tls=passed method=passed target=passed ssp-headers=passed cert-asid=passed sender=passed receiver=passed endpoint=passed " +
				"agreement=passed jwt=not_run interaction-route=not_run audit=passed upstream=passed provider=passed"},
		{"CORS preflight answered", "enforce", "OPTIONS", nil, "answered", "", "",
			"tls=passed method=passed target=not_run ssp-headers=not_run cert-asid=not_run sender=not_run receiver=not_run endpoint=not_run " +
				"agreement=not_run jwt=not_run interaction-route=not_run audit=passed upstream=not_run provider=not_run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := servers[tt.mode]
			req, _ := http.NewRequest(tt.method, s.base+"/"+p.root+"/metadata", nil)
			req.Header = validHeaders(in, p.root)
			if tt.edit != nil {
				tt.edit(req.Header)
			}
			resp, err := consumerClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			j := obs.nextJourney(t)
			if j.Decision != tt.decision || j.Rule != tt.rule || j.Token != tt.token || j.Status != resp.StatusCode {
				t.Errorf("journey: decision %q rule %q token %q status %d; want %q %q %q %d",
					j.Decision, j.Rule, j.Token, j.Status, tt.decision, tt.rule, tt.token, resp.StatusCode)
			}
			want := strings.Fields(tt.steps)
			got := stepVerdicts(j)
			if !slices.Equal(got, want) {
				t.Errorf("steps:\n got %v\nwant %v", got, want)
			}
			if j.TraceID != req.Header.Get("Ssp-TraceID") || j.From != consumerASID || j.Method != tt.method {
				t.Errorf("journey identity: trace %q from %q method %q", j.TraceID, j.From, j.Method)
			}
			if j.RequestHeader.Get("Authorization") != "" {
				t.Error("the journey's request headers carry the bearer token")
			}
			if j.Authorization != req.Header.Get("Authorization") {
				t.Error("the journey lost the Authorization header the console decodes")
			}
			if j.Reason != resp.Header.Get(ReasonHeader) && tt.decision == "refused" {
				t.Errorf("reason %q, Sspemu-Reason %q", j.Reason, resp.Header.Get(ReasonHeader))
			}
			for _, st := range j.Steps {
				if st.Verdict == VerdictFailed && (st.Detail == "" || st.Token != tt.token) {
					t.Errorf("failed step %s without its reason or token: %+v", st.Name, st)
				}
				if st.Verdict == VerdictLogged && !strings.Contains(st.Detail, "exp") {
					t.Errorf("logged-only step %s does not say what failed: %q", st.Name, st.Detail)
				}
			}
			if tt.decision == "forwarded" && (j.ResponseHeader.Get("Content-Type") != gpconnect.MIMEJSON || j.ServiceRoot != p.root) {
				t.Errorf("forwarded journey: response headers %v, service root %q", j.ResponseHeader, j.ServiceRoot)
			}
		})
	}
}

func TestJourneyOfAnUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	root := "https://localhost:" + port + "/A20047/STU3/1/gpconnect"
	obs := newObserver()
	s := startSSP(t, testConfig(), registry(root), observedBy(obs, nil, nil))
	in := mustLookup(t, gpconnect.ReadMetadata)
	req, _ := http.NewRequest("GET", s.base+"/"+root+"/metadata", nil)
	req.Header = validHeaders(in, root)
	resp, err := consumerClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	j := obs.nextJourney(t)
	last := j.Steps[len(j.Steps)-2:]
	if j.Rule != "upstream" || last[0].Name != "upstream" || last[0].Verdict != VerdictFailed ||
		last[1].Actor != ActorPractice || last[1].Verdict != VerdictFailed || !strings.HasPrefix(j.Token, "ERROR_COMMUNICATING_TO_ENDPOINT_URL_") {
		t.Errorf("journey of a 502: rule %q token %q steps %v", j.Rule, j.Token, stepVerdicts(j))
	}
}

// TestHandshakeRefusalsClassified refuses real handshakes of every kind and
// checks each is told to the observer, counted and logged with its reason.
func TestHandshakeRefusalsClassified(t *testing.T) {
	p := startProvider(t, http.NotFoundHandler())
	// A PKI of this test's own, since it revokes a certificate.
	dir := t.TempDir()
	if err := certs.Init(dir, false, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ResolvePKI(dir)
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, certs.SSPServerFile), filepath.Join(dir, certs.SSPServerKeyFile)
	cfg.TLS.ClientCA, cfg.TLS.CRL = filepath.Join(dir, certs.CAFile), filepath.Join(dir, certs.CRLFile)
	obs := newObserver()
	m := &handshakeCounter{counts: map[string]int{}}
	var logs syncBuffer
	s := startSSP(t, cfg, registry(p.root), observedBy(obs, m, &logs))

	pool, err := certs.LoadCertPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPair := func(name string) tls.Certificate {
		c, err := certs.LoadKeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, _, err := certs.Issue(dir, "expired.consumer.example", certs.IssueOptions{Purpose: certs.Client,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.Issue(dir, "revoked.consumer.example", certs.IssueOptions{Purpose: certs.Client}); err != nil {
		t.Fatal(err)
	}
	if err := certs.Revoke(dir, filepath.Join(dir, "revoked.consumer.example.pem")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.Issue(dir, "server-only.example", certs.IssueOptions{Purpose: certs.Server}); err != nil {
		t.Fatal(err)
	}
	other := otherCA(t)
	foreign, err := certs.LoadKeyPair(filepath.Join(other, certs.ConsumerFile), filepath.Join(other, certs.ConsumerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	otherPool, err := certs.LoadCertPool(filepath.Join(other, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	good := &tls.Config{Certificates: []tls.Certificate{keyPair("consumer")}, RootCAs: pool, MinVersion: tls.VersionTLS12}

	tlsCases := []struct {
		name   string
		mutate func(c *tls.Config)
		want   string
	}{
		{"no client certificate", func(c *tls.Config) { c.Certificates = nil }, HandshakeNoCertificate},
		// Sent whatever the server asks for, as curl --cert does (Go's
		// client would otherwise send no certificate the CA did not sign).
		{"certificate of another CA", func(c *tls.Config) {
			c.Certificates = nil
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
		}, HandshakeUnknownCA},
		{"expired certificate", func(c *tls.Config) { c.Certificates = []tls.Certificate{keyPair("expired.consumer.example")} }, HandshakeExpired},
		{"revoked certificate", func(c *tls.Config) { c.Certificates = []tls.Certificate{keyPair("revoked.consumer.example")} }, HandshakeRevoked},
		{"server certificate used as a client's", func(c *tls.Config) { c.Certificates = []tls.Certificate{keyPair("server-only.example")} }, HandshakeBadCertificate},
		{"TLS 1.1", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, HandshakeProtocol},
		{"TLS 1.3 only", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, HandshakeProtocol},
		{"AES128-SHA256", func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA256}
		}, HandshakeCipherSuite},
		{"client does not trust the SSP", func(c *tls.Config) { c.RootCAs = otherPool }, HandshakeSSPUntrusted},
	}
	for _, tc := range tlsCases {
		t.Run(tc.name, func(t *testing.T) {
			c := good.Clone()
			tc.mutate(c)
			if err := handshake(s.addr, c); err == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
			h := obs.nextHandshake(t)
			if h.Reason != tc.want || h.Client == "" || h.Advice == "" || h.Time.IsZero() {
				t.Errorf("told %+v, want reason %s", h, tc.want)
			}
			if strings.Contains(h.Detail, dir) {
				t.Errorf("the detail names a server path: %q", h.Detail)
			}
		})
	}
	rawCases := []struct {
		name, send, want string
	}{
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", HandshakeNotTLS},
		{"closed before the handshake ended", "", HandshakeAborted},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(tc.send))
			if tc.send != "" {
				conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				conn.Read(make([]byte, 64))
			}
			conn.Close()
			if h := obs.nextHandshake(t); h.Reason != tc.want {
				t.Errorf("told %+v, want reason %s", h, tc.want)
			}
		})
	}
	if err := handshake(s.addr, good); err != nil {
		t.Fatalf("the good consumer is refused: %v", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tc := range tlsCases {
		if m.counts[tc.want] == 0 {
			t.Errorf("no %s refusal counted: %v", tc.want, m.counts)
		}
	}
	if m.counts[HandshakeProtocol] != 2 {
		t.Errorf("protocol refusals counted %d, want 2", m.counts[HandshakeProtocol])
	}
	log := logs.String()
	if !strings.Contains(log, "TLS handshake refused") || !strings.Contains(log, "reason=no-certificate") {
		t.Errorf("the log does not name the refusal and its reason:\n%s", log)
	}
}

func TestClassifyHandshake(t *testing.T) {
	tests := []struct{ msg, reason string }{
		{"tls: client didn't provide a certificate", HandshakeNoCertificate},
		{"tls: failed to verify certificate: x509: certificate signed by unknown authority", HandshakeUnknownCA},
		{"tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-11-24T09:00:00Z is after 2026-11-23T09:00:00Z", HandshakeExpired},
		{"certificate serial 0a (c.example) is revoked by /srv/state/pki/crl.pem", HandshakeRevoked},
		{"tls: failed to verify certificate: x509: certificate specifies an incompatible key usage", HandshakeBadCertificate},
		{"tls: client offered only unsupported versions: [302 301]", HandshakeProtocol},
		{"tls: no cipher suite supported by both client and server; client offered: [3c]", HandshakeCipherSuite},
		{"remote error: tls: unknown certificate authority", HandshakeSSPUntrusted},
		{"client sent an HTTP request to an HTTPS server", HandshakeNotTLS},
		{"tls: first record does not look like a TLS handshake", HandshakeNotTLS},
		{"EOF", HandshakeAborted},
		{"read tcp 127.0.0.1:8443->127.0.0.1:5000: read: connection reset by peer", HandshakeAborted},
		{"read tcp 127.0.0.1:8443->127.0.0.1:5000: i/o timeout", HandshakeAborted},
		{"something new", HandshakeOther},
	}
	for _, tt := range tests {
		reason, detail := ClassifyHandshake(tt.msg)
		if reason != tt.reason {
			t.Errorf("%q: %s, want %s", tt.msg, reason, tt.reason)
		}
		if strings.Contains(detail, "/srv/") || strings.Contains(detail, "127.0.0.1:8443") {
			t.Errorf("%q: detail %q names a server path or address", tt.msg, detail)
		}
		if !slices.Contains(HandshakeReasons, reason) || HandshakeAdvice(reason) == "" {
			t.Errorf("%q: reason %s is not in HandshakeReasons or has no advice", tt.msg, reason)
		}
	}
}

// FuzzHandshakeLog feeds the server's error log any line: it never panics,
// and a handshake line always gives one of the fixed reasons.
func FuzzHandshakeLog(f *testing.F) {
	f.Add("http: TLS handshake error from 127.0.0.1:5000: tls: client didn't provide a certificate\n")
	f.Add("http: TLS handshake error from [::1]:5000: EOF")
	f.Add("http: TLS handshake error from ")
	f.Add("http: superfluous response.WriteHeader call")
	f.Fuzz(func(t *testing.T, line string) {
		obs := &lastHandshake{}
		m := &handshakeCounter{counts: map[string]int{}}
		s := &Server{log: slog.New(slog.DiscardHandler), metrics: m, observer: obs, now: time.Now}
		if n, err := s.serverErrorLog().Writer().Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if !strings.HasPrefix(line, handshakePrefix) {
			if obs.h != nil {
				t.Fatal("a line that is not a handshake error was told as one")
			}
			return
		}
		if obs.h == nil || !slices.Contains(HandshakeReasons, obs.h.Reason) {
			t.Fatalf("handshake line %q told as %+v", line, obs.h)
		}
	})
}

type lastHandshake struct{ h *Handshake }

func (o *lastHandshake) Journey(*Journey)       {}
func (o *lastHandshake) Handshake(h *Handshake) { o.h = h }

type discardObserver struct{}

func (discardObserver) Journey(*Journey)     {}
func (discardObserver) Handshake(*Handshake) {}

// BenchmarkPublish is what telling the console costs a request: building
// its journey (headers copied, steps judged) and one call to the observer.
func BenchmarkPublish(b *testing.B) {
	root := "https://localhost:9443/A20047/STU3/1/gpconnect"
	table, err := registry(root).Build()
	if err != nil {
		b.Fatal(err)
	}
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	r, _ := http.NewRequest("GET", "https://127.0.0.1:8443/"+root+"/metadata", nil)
	r.Header = validHeaders(in, root)
	r.RequestURI = "/" + root + "/metadata"
	h, _ := gpconnect.ParseSspHeaders(r.Header)
	sc := &scope{start: time.Now(), table: table, hdr: h, decision: "forwarded"}
	sc.target, _ = ParseTarget(r.RequestURI)
	cw := &countingWriter{ResponseWriter: &benchWriter{h: http.Header{"Content-Type": {gpconnect.MIMEJSON}, "Cache-Control": {"no-store"}}}}
	t := &audit.Transaction{TraceID: h.TraceID, Status: 200, Decision: "forwarded"}
	s := &Server{cfg: testConfig(), observer: discardObserver{}}
	b.ReportAllocs()
	for b.Loop() {
		s.publish(r, sc, cw, t)
	}
}
