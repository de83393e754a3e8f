package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// limitsConn is one raw consumer connection to the SSP.
type limitsConn struct {
	t    *testing.T
	conn *tls.Conn
	br   *bufio.Reader
}

func dialSSP(t *testing.T, s *ssp) *limitsConn {
	t.Helper()
	conn, err := tls.Dial("tcp", s.addr, consumerTLS(t))
	if err != nil {
		t.Fatalf("dial SSP: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	// No test here may hang: an answer that never comes fails by this.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &limitsConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// head is a request head with the given extra lines (each "Name: value").
func head(method, uri, addr string, h http.Header, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, uri, addr)
	h.Write(&b)
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func (c *limitsConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *limitsConn) answer() (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	return resp, readBody(c.t, resp)
}

// closed reports whether the SSP closed the connection after its answer:
// the next read ends (EOF, or a reset when the SSP closed with bytes of
// the consumer's still unread) rather than waiting for the deadline.
func (c *limitsConn) closed() bool {
	c.t.Helper()
	_, err := c.br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return false
	}
	if !errors.Is(err, io.EOF) {
		c.t.Logf("connection ended with %v", err)
	}
	return true
}

// auditRecord finds the audit record of traceID in the SSP's audit log.
func auditRecord(t *testing.T, s *ssp, traceID string) audit.Record {
	t.Helper()
	files, err := audit.ChainFiles(s.dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) == nil && r.TraceID == traceID {
				return r
			}
		}
	}
	t.Fatalf("no audit record for %s in %s", traceID, filepath.Join(s.dir, "audit-*.jsonl"))
	return audit.Record{}
}

// TestLimitsRefuse sends each kind of request the consumer leg's limits
// refuse, over real TLS to a provider that is a trap: each gets its
// OperationOutcome in the negotiated format with a reason, rule limits in
// the audit and transaction records, the connection closed after it, and
// not one connection reaches the provider.
func TestLimitsRefuse(t *testing.T) {
	tr := startTrap(t)
	root := "https://localhost:" + tr.port + "/A20047/STU3/1/gpconnect"
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 10
	cfg.MaxHeaderFields = 20
	cfg.BodyTimeout = 500 * time.Millisecond
	s := startSSP(t, cfg, registry(root))
	book := mustLookup(t, gpconnect.CreateAppointment)
	uri := "/" + root + "/Appointment"
	many := make([]string, 14) // with the 7 valid headers and Host: 22 fields
	for i := range many {
		many[i] = fmt.Sprintf("X-Filler-%d: %d", i, i)
	}
	tests := []struct {
		name    string
		extra   []string // head lines beyond the valid headers
		body    string
		hangUp  bool // the consumer stops sending (TLS close_notify) after body
		xml     bool
		status  int
		reason  string
		outcome string // issue code
	}{
		{name: "too many header fields", extra: many, status: 431, reason: "22 header fields; the SSP takes at most 20 (ssp.max_header_fields)", outcome: "too-costly"},
		{name: "declared body too large", extra: []string{"Content-Length: 52428800"}, status: 413, reason: "announces 52428800 bytes; the SSP takes at most 1024 (ssp.max_body_bytes)", outcome: "too-costly"},
		{name: "chunked body too large", extra: []string{"Transfer-Encoding: chunked"}, body: "800\r\n" + strings.Repeat("x", 0x800) + "\r\n0\r\n\r\n", status: 413, reason: "over 1024 bytes", outcome: "too-costly"},
		{name: "content-length and transfer-encoding", extra: []string{"Content-Length: 4", "Transfer-Encoding: chunked"}, body: "0\r\n\r\n", status: 400, reason: "both Content-Length and Transfer-Encoding", outcome: "invalid"},
		{name: "body never completes", extra: []string{"Content-Length: 1000"}, body: "0123456789", status: 408, reason: "did not arrive within 500ms of the request head (ssp.body_timeout): 10 of the 1000 bytes", outcome: "timeout"},
		{name: "body never completes, XML", extra: []string{"Content-Length: 1000"}, body: "0123456789", xml: true, status: 408, reason: "ssp.body_timeout", outcome: "timeout"},
		{name: "content-length longer than the body", extra: []string{"Content-Length: 1000"}, body: "0123456789", hangUp: true, status: 400, reason: "ended after 10 of the 1000 bytes its Content-Length announced", outcome: "invalid"},
		{name: "bad chunk size", extra: []string{"Transfer-Encoding: chunked"}, body: "zz\r\nabc\r\n0\r\n\r\n", status: 400, reason: "chunked request body is malformed", outcome: "invalid"},
		{name: "chunk longer than its size", extra: []string{"Transfer-Encoding: chunked"}, body: "3\r\nabcdef\r\n0\r\n\r\n", status: 400, reason: "chunked request body is malformed", outcome: "invalid"},
		{name: "short last chunk", extra: []string{"Transfer-Encoding: chunked"}, body: "a\r\nabc", hangUp: true, status: 400, reason: "chunked request body ended after 3 bytes", outcome: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHeaders(book, root)
			h.Set("Content-Type", gpconnect.MIMEJSON)
			if tt.xml {
				h.Set("Accept", gpconnect.MIMEXML)
			}
			c := dialSSP(t, s)
			c.send(head("POST", uri, s.addr, h, tt.extra...) + tt.body)
			if tt.hangUp {
				if err := c.conn.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			resp, body := c.answer()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get(ReasonHeader); !strings.Contains(got, tt.reason) {
				t.Errorf("Sspemu-Reason %q lacks %q", got, tt.reason)
			}
			wantType := "application/fhir+json"
			if tt.xml {
				wantType = "application/fhir+xml"
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
				t.Errorf("Content-Type %q, want %s", ct, wantType)
			}
			for _, want := range []string{"OperationOutcome", "BAD_REQUEST", tt.outcome, tt.reason} {
				if tt.xml && want == tt.reason {
					continue // escaped in XML
				}
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if !c.closed() {
				t.Error("the connection stayed open after a limits refusal")
			}
			trace := h.Get("Ssp-TraceID")
			if rec := auditRecord(t, s, trace); rec.Decision != "refused" || rec.Rule != RuleLimits || rec.Status != tt.status || !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("audit record %+v, want refused by limits with %d", rec, tt.status)
			}
			if tx := waitTransaction(t, s, trace); tx.Decision != "refused" || tx.Rule != RuleLimits || tx.Status != tt.status || tx.ClientAborted || tx.Reason == "" {
				t.Errorf("transaction %+v, want refused by limits, %d, with its reason, not client_aborted", tx, tt.status)
			}
		})
	}
	if n := tr.dials.Load(); n != 0 {
		t.Fatalf("refused requests opened %d connections to the provider", n)
	}
}

// TestStalledBodiesAreAnsweredAndHoldNothing is the slow-body attack of
// issue 16: ten requests announce 100,000 bytes and send ten. Each is
// answered 408 and closed once ssp.body_timeout has passed, and none of
// them opened a provider connection while it waited.
func TestStalledBodiesAreAnsweredAndHoldNothing(t *testing.T) {
	tr := startTrap(t)
	root := "https://localhost:" + tr.port + "/A20047/STU3/1/gpconnect"
	cfg := testConfig()
	cfg.BodyTimeout = 300 * time.Millisecond
	s := startSSP(t, cfg, registry(root))
	book := mustLookup(t, gpconnect.CreateAppointment)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c := dialSSP(t, s)
			h := validHeaders(book, root)
			h.Set("Content-Type", gpconnect.MIMEJSON)
			c.send(head("POST", "/"+root+"/Appointment", s.addr, h, "Content-Length: 100000") + "0123456789")
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Errorf("no answer to a stalled body: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || !c.closed() {
				t.Errorf("stalled body: %d, want 408 and the connection closed", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := tr.dials.Load(); n != 0 {
		t.Fatalf("stalled bodies opened %d provider connections", n)
	}
}

// TestBodiesForwardedWhole: a body within the limits reaches the provider
// whole, with its length, whether the consumer sent it with a length or
// chunked; requests with bodies share a keep-alive connection, and a
// chunked one ends it (the SSP does not follow a connection past a
// chunked body). A GET with no body stays without one.
func TestBodiesForwardedWhole(t *testing.T) {
	type got struct {
		length int64
		te     []string
		body   string
	}
	seen := make(chan got, 8)
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- got{r.ContentLength, r.TransferEncoding, string(b)}
		w.Header().Set("Content-Type", gpconnect.MIMEJSON)
		io.WriteString(w, `{}`)
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	book := mustLookup(t, gpconnect.CreateAppointment)
	c := dialSSP(t, s)
	uri := "/" + p.root + "/Appointment"
	var pipelined strings.Builder
	for _, body := range []string{`{"resourceType":"Appointment"}`, `{"n":2}`} {
		h := validHeaders(book, p.root)
		h.Set("Content-Type", gpconnect.MIMEJSON)
		pipelined.WriteString(head("POST", uri, s.addr, h, fmt.Sprintf("Content-Length: %d", len(body))) + body)
	}
	c.send(pipelined.String()) // both at once: the second head follows the first body
	for i, want := range []string{`{"resourceType":"Appointment"}`, `{"n":2}`} {
		resp, body := c.answer()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %d close=%v %s", i, resp.StatusCode, resp.Close, body)
		}
		if g := <-seen; g.body != want || g.length != int64(len(want)) || g.te != nil {
			t.Errorf("request %d: provider got %+v, want %q with its length", i, g, want)
		}
	}
	h := validHeaders(book, p.root)
	h.Set("Content-Type", gpconnect.MIMEJSON)
	c.send(head("POST", uri, s.addr, h, "Transfer-Encoding: chunked") + "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")
	resp, body := c.answer()
	if resp.StatusCode != 200 || !resp.Close || !c.closed() {
		t.Fatalf("chunked request: %d close=%v %s %s, want 200 and the connection closed after it", resp.StatusCode, resp.Close, resp.Header.Get(ReasonHeader), body)
	}
	if g := <-seen; g.body != `{"a":1}` || g.length != 7 {
		t.Errorf("chunked body reached the provider as %+v, want {\"a\":1} with Content-Length 7", g)
	}
}

// TestIdleConnectionClosed: a keep-alive connection left idle is closed
// after ssp.idle_timeout.
func TestIdleConnectionClosed(t *testing.T) {
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cfg := testConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	s := startSSP(t, cfg, registry(p.root))
	c := dialSSP(t, s)
	in := mustLookup(t, gpconnect.ReadMetadata)
	c.send(head("GET", "/"+p.root+"/metadata", s.addr, validHeaders(in, p.root)))
	if resp, body := c.answer(); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("%d close=%v %s", resp.StatusCode, resp.Close, body)
	}
	start := time.Now()
	if !c.closed() { // the deadline of dialSSP bounds the wait
		t.Fatal("the idle connection was not closed by the SSP")
	}
	t.Logf("closed after %v idle", time.Since(start).Round(time.Millisecond))
}

// TestHandshakeRefusalsLogged: the SSP's listener does the TLS handshake
// itself, so it must report refusals as net/http's TLS listener does: a
// plain-HTTP client gets net/http's hint, and every refused handshake is a
// "http: TLS handshake error" line in the log.
func TestHandshakeRefusalsLogged(t *testing.T) {
	p := startProvider(t, http.NotFoundHandler())
	var logs syncBuffer
	addr := startSSP(t, testConfig(), registry(p.root), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}).addr

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, _ := io.ReadAll(conn)
	if !strings.Contains(string(b), "400 Bad Request") || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP got %q", b)
	}
	noCert := consumerTLS(t)
	noCert.Certificates = nil
	if err := handshake(addr, noCert); err == nil {
		t.Fatal("a handshake without a client certificate succeeded")
	}
	// The good consumer still gets through the same listener.
	if err := handshake(addr, consumerTLS(t)); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("the good consumer: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(strings.Contains(logs.String(), "client sent an HTTP request to an HTTPS server") &&
		strings.Contains(logs.String(), "certificate")) {
		if time.Now().After(deadline) {
			t.Fatalf("handshake refusals not logged:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), `msg="TLS handshake refused" client=127.0.0.1:`); n != 2 {
		t.Errorf("%d handshake error lines, want 2:\n%s", n, logs.String())
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsumerGoneMidBody: a consumer whose connection dies while its body
// is on the way is the one case of client_aborted among limits refusals:
// its refusal cannot be delivered. The records still say refused, by
// limits, and nothing reached the provider.
func TestConsumerGoneMidBody(t *testing.T) {
	tr := startTrap(t)
	root := "https://localhost:" + tr.port + "/A20047/STU3/1/gpconnect"
	s := startSSP(t, testConfig(), registry(root))
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumerTLS(t)
	cfg.ServerName = "localhost"
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	h := validHeaders(mustLookup(t, gpconnect.CreateAppointment), root)
	h.Set("Content-Type", gpconnect.MIMEJSON)
	if _, err := io.WriteString(conn, head("POST", "/"+root+"/Appointment", s.addr, h, "Content-Length: 1000")+"0123456789"); err != nil {
		t.Fatal(err)
	}
	// Gone without a goodbye: the kernel answers whatever comes next with
	// a reset.
	raw.(*net.TCPConn).SetLinger(0)
	raw.Close()
	tx := waitTransaction(t, s, h.Get("Ssp-TraceID"))
	if tx.Decision != "refused" || tx.Rule != RuleLimits || !tx.ClientAborted {
		t.Errorf("transaction %+v, want refused by limits and client_aborted", tx)
	}
	if rec := auditRecord(t, s, h.Get("Ssp-TraceID")); rec.Decision != "refused" || rec.Rule != RuleLimits {
		t.Errorf("audit record %+v, want refused by limits", rec)
	}
	if n := tr.dials.Load(); n != 0 {
		t.Fatalf("a body cut short opened %d provider connections", n)
	}
}
