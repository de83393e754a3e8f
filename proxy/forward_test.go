package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sspemu/certs"
	"sspemu/gpconnect"
)

// seen is what the provider received.
type seen struct {
	method, uri, host, body string
	header                  http.Header
}

func TestForwardsRequestAndAnswerUnchanged(t *testing.T) {
	got := make(chan seen, 1)
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Host, string(b), r.Header.Clone()}
		w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
		w.Header().Set("ETag", `W/"2"`)
		w.Header().Set("Location", "https://x/Appointment/1/_history/2")
		w.Header().Set("X-Provider", "kept")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"resourceType":"Appointment","id":"1"}`)
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.CreateAppointment)
	h := validHeaders(in, p.root)
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Prefer", "return=representation")
	h.Set("If-Match", `W/"1"`)
	h.Set("X-Custom", "a b")
	h.Set("Connection", "X-Hop")
	h.Set("X-Hop", "must not pass")
	h.Set("Keep-Alive", "timeout=5")
	body := `{"resourceType":"Appointment","status":"booked"}`
	uri := "/" + p.root + "/Appointment?a=%7C|b&c=%2B+d"
	resp := rawExchange(t, s.addr, consumerTLS(t), "POST", uri, h, body)
	answer := readBody(t, resp)
	r := <-got

	if r.method != "POST" || r.body != body {
		t.Errorf("provider got %s with body %q", r.method, r.body)
	}
	if want := "/A20047/STU3/1/gpconnect/Appointment?a=%7C|b&c=%2B+d"; r.uri != want {
		t.Errorf("provider got request URI %q, want %q (byte for byte)", r.uri, want)
	}
	if r.host != "localhost:"+p.port {
		t.Errorf("provider got Host %q", r.host)
	}
	for _, k := range []string{"Authorization", "Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID", "If-Match", "Prefer", "X-Custom", "Content-Type", "Accept"} {
		if r.header.Get(k) != h.Get(k) {
			t.Errorf("header %s: provider got %q, consumer sent %q", k, r.header.Get(k), h.Get(k))
		}
	}
	for _, k := range []string{"X-Hop", "Keep-Alive"} {
		if v := r.header.Get(k); v != "" {
			t.Errorf("hop-by-hop header %s passed on: %q", k, v)
		}
	}
	if f := r.header.Get("Forwarded"); f != "for=127.0.0.1" {
		t.Errorf("Forwarded = %q, want for=127.0.0.1", f)
	}
	if resp.StatusCode != http.StatusCreated || answer != `{"resourceType":"Appointment","id":"1"}` {
		t.Errorf("consumer got %d %q", resp.StatusCode, answer)
	}
	for k, v := range map[string]string{"ETag": `W/"2"`, "Location": "https://x/Appointment/1/_history/2", "X-Provider": "kept", "Content-Type": "application/fhir+json;charset=utf-8"} {
		if resp.Header.Get(k) != v {
			t.Errorf("answer header %s = %q, want %q", k, resp.Header.Get(k), v)
		}
	}
}

func TestRepairsCollapsedPrefix(t *testing.T) {
	got := make(chan string, 1)
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.RequestURI }))
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.ReadMetadata)
	collapsed := "/https:/" + strings.TrimPrefix(p.root, "https://") + "/metadata"
	resp := rawExchange(t, s.addr, consumerTLS(t), "GET", collapsed, validHeaders(in, p.root), "")
	readBody(t, resp)
	if resp.StatusCode != 200 || <-got != "/A20047/STU3/1/gpconnect/metadata" {
		t.Fatalf("collapsed prefix: status %d", resp.StatusCode)
	}
}

func TestGzipAndChunkedPassThroughStreamed(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"resourceType":"Bundle"}`))
	zw.Close()
	first, release := make(chan struct{}), make(chan struct{})
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metadata") {
			if r.Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding not passed: %q", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gz.Bytes())
			return
		}
		w.Write([]byte("part one;"))
		w.(http.Flusher).Flush()
		close(first)
		<-release
		w.Write([]byte("part two"))
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	c := consumerClient(t)

	in := mustLookup(t, gpconnect.ReadMetadata)
	req, _ := http.NewRequest("GET", s.base+"/"+p.root+"/metadata", nil)
	req.Header = validHeaders(in, p.root)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); resp.Header.Get("Content-Encoding") != "gzip" || b != gz.String() {
		t.Errorf("gzip body changed on the way: encoding %q, %d bytes, want %d", resp.Header.Get("Content-Encoding"), len(b), gz.Len())
	}

	in = mustLookup(t, gpconnect.ReadPatient)
	req, _ = http.NewRequest("GET", s.base+"/"+p.root+"/Patient/2", nil)
	req.Header = validHeaders(in, p.root)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("part one;"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part one;" {
		t.Fatalf("first chunk not streamed before the provider finished: %q %v", buf, err)
	}
	<-first
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "part two" {
		t.Errorf("rest = %q", rest)
	}
}

func TestTLSRefusals(t *testing.T) {
	p := startProvider(t, http.NotFoundHandler())
	s := startSSP(t, testConfig(), registry(p.root))
	good := consumerTLS(t)
	other := otherCA(t)
	foreign, err := certs.LoadKeyPair(filepath.Join(other, certs.ConsumerFile), filepath.Join(other, certs.ConsumerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(c *tls.Config){
		"TLS 1.1":                   func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 },
		"TLS 1.3 only":              func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 },
		"no client certificate":     func(c *tls.Config) { c.Certificates = nil },
		"certificate of another CA": func(c *tls.Config) { c.Certificates = []tls.Certificate{foreign} },
		"AES128-SHA256 (no forward secrecy)": func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA256}
		},
		"ECDHE with ChaCha20 (not a Spine family)": func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := good.Clone()
			mutate(c)
			if err := handshake(s.addr, c); err == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
		})
	}
	if err := handshake(s.addr, good); err != nil {
		t.Fatalf("the good consumer is refused: %v", err)
	}
}

// handshake dials, completes the handshake and reads once, so a refusal the
// server sends after the client's last flight is seen too.
func handshake(addr string, c *tls.Config) error {
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == io.EOF {
		return err
	}
	return err
}

// revocableSSP starts an SSP on a PKI of its own, whose CRL the test can
// change, and returns it, that PKI's directory and a consumer's TLS
// configuration with that PKI's consumer certificate.
func revocableSSP(t *testing.T) (*ssp, string, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	if err := certs.Init(dir, false, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	p := startProvider(t, http.NotFoundHandler())
	cfg := testConfig()
	cfg.TLS.ClientCA = filepath.Join(dir, certs.CAFile)
	cfg.TLS.CRL = filepath.Join(dir, certs.CRLFile)
	s := startSSP(t, cfg, registry(p.root))
	cert, err := certs.LoadKeyPair(filepath.Join(dir, certs.ConsumerFile), filepath.Join(dir, certs.ConsumerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := consumerTLS(t)
	c.Certificates = []tls.Certificate{cert}
	return s, dir, c
}

func TestRevokedCertificateRefusedWhileRunning(t *testing.T) {
	s, dir, c := revocableSSP(t)
	if err := handshake(s.addr, c); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := certs.Revoke(dir, filepath.Join(dir, certs.ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	c = c.Clone() // no session to resume
	if err := handshake(s.addr, c); err == nil {
		t.Fatal("a revoked certificate completed a request")
	}
}

func TestUpstreamFailures(t *testing.T) {
	in := mustLookup(t, gpconnect.ReadMetadata)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	reset := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	// A provider whose certificate the SSP cannot verify.
	other := otherCA(t)
	badTLS := startProvider(t, http.NotFoundHandler())
	foreign, _ := certs.LoadKeyPair(filepath.Join(other, certs.ProviderFile), filepath.Join(other, certs.ProviderKeyFile))
	badTLS.srv.TLS.Certificates = []tls.Certificate{foreign}

	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	slow := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))

	tests := []struct {
		name, root string
		status     int
	}{
		{"unreachable", "https://localhost:" + closedPort + "/A20047/STU3/1/gpconnect", http.StatusBadGateway},
		{"connection reset", reset.root, http.StatusBadGateway},
		{"provider TLS not verifiable", badTLS.root, http.StatusBadGateway},
		{"no answer in time", slow.root, http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig() // 30 s: only the silent provider may time out
			if tt.status == http.StatusGatewayTimeout {
				cfg.UpstreamTimeout = 300 * time.Millisecond
			}
			s := startSSP(t, cfg, registry(tt.root))
			target := tt.root + "/metadata"
			resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+target, validHeaders(in, tt.root), "")
			body := readBody(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var oo struct {
				ResourceType string
				Issue        []struct {
					Diagnostics string
					Details     struct {
						Coding []struct{ System, Code, Display string }
					}
				}
			}
			if err := json.Unmarshal([]byte(body), &oo); err != nil || len(oo.Issue) != 1 {
				t.Fatalf("not an OperationOutcome: %v %s", err, body)
			}
			want := "ERROR_COMMUNICATING_TO_ENDPOINT_URL_" + target
			if oo.Issue[0].Diagnostics != want || oo.Issue[0].Details.Coding[0].Display != want {
				t.Errorf("diagnostics %q, want %q", oo.Issue[0].Diagnostics, want)
			}
			if resp.Header.Get(ReasonHeader) == "" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers: %v", resp.Header)
			}
		})
	}
}
