package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// connLog records the provider's connection states.
type connLog struct {
	mu     sync.Mutex
	opened int
	closed chan struct{} // one value per closed connection
}

func newConnLog() *connLog { return &connLog{closed: make(chan struct{}, 64)} }

func (l *connLog) hook(s *httptest.Server) {
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			l.mu.Lock()
			l.opened++
			l.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			l.closed <- struct{}{}
		}
	}
}

func (l *connLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened
}

// waitClosed waits for n connections to have closed on the provider's side.
func (l *connLog) waitClosed(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-l.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the provider's connection did not close")
		}
	}
}

// echoProvider answers with the method and the body it received.
func echoProvider(t *testing.T, opts ...func(*httptest.Server)) *provider {
	return startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("provider read body: %v", err)
		}
		w.Header().Set("Content-Type", gpconnect.MIMEJSON)
		fmt.Fprintf(w, `{"method":%q,"body":%q}`, r.Method, b)
	}), opts...)
}

// readMetadataTimes reads p's metadata n times in a row through s, each on
// a new consumer connection, and fails on any answer but 200.
func readMetadataTimes(t *testing.T, s *ssp, p *provider, n int) {
	t.Helper()
	in := mustLookup(t, gpconnect.ReadMetadata)
	for i := range n {
		resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", validHeaders(in, p.root), "")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
}

func TestUpstreamReusesProviderConnections(t *testing.T) {
	conns := newConnLog()
	p := echoProvider(t, conns.hook)
	readMetadataTimes(t, startSSP(t, testConfig(), registry(p.root)), p, 5)
	if n := conns.count(); n != 1 {
		t.Errorf("5 requests in a row opened %d provider connections, want 1 (kept alive)", n)
	}
}

// A provider may close a keep-alive connection while it waits in the
// pool. A read goes again on a fresh connection; a booking is never sent
// into the dead one, because its connection is checked first.
func TestUpstreamSurvivesProviderClosingIdleConnection(t *testing.T) {
	conns := newConnLog()
	p := echoProvider(t, conns.hook)
	s := startSSP(t, testConfig(), registry(p.root))
	read := mustLookup(t, gpconnect.ReadMetadata)
	book := mustLookup(t, gpconnect.CreateAppointment)

	get := func() {
		t.Helper()
		resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", validHeaders(read, p.root), "")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"GET"`) {
			t.Fatalf("GET: %d %s", resp.StatusCode, body)
		}
	}
	get()
	p.srv.CloseClientConnections()
	conns.waitClosed(t, 1)
	get() // the pooled connection is dead: sent again on a new one

	p.srv.CloseClientConnections()
	conns.waitClosed(t, 1)
	h := validHeaders(book, p.root)
	h.Set("Content-Type", gpconnect.MIMEJSON)
	body := `{"resourceType":"Appointment"}`
	resp := rawExchange(t, s.addr, consumerTLS(t), "POST", "/"+p.root+"/Appointment", h, body)
	answer := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(answer, `"POST"`) || !strings.Contains(answer, `resourceType`) {
		t.Fatalf("POST after the provider closed the pooled connection: %d %s", resp.StatusCode, answer)
	}
	if n := conns.count(); n != 3 {
		t.Errorf("provider saw %d connections, want 3 (one per close)", n)
	}
}

func TestUpstreamForwardsChunkedBody(t *testing.T) {
	p := echoProvider(t)
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.CreateAppointment)
	conn, err := tls.Dial("tcp", s.addr, consumerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST /%s/Appointment HTTP/1.1\r\nHost: %s\r\n", p.root, s.addr)
	h := validHeaders(in, p.root)
	h.Set("Content-Type", gpconnect.MIMEJSON)
	h.Write(&b)
	b.WriteString("Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n4\r\n\"b\"}\r\n0\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, resp); resp.StatusCode != http.StatusOK || got != `{"method":"POST","body":"{\"a\":\"b\"}"}` {
		t.Errorf("chunked body: %d %s", resp.StatusCode, got)
	}
}

// The provider's 1xx interim answers are not the answer.
func TestUpstreamSkipsInterimAnswers(t *testing.T) {
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.ReadMetadata)
	resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", validHeaders(in, p.root), "")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "final" {
		t.Errorf("got %d %q, want 200 final", resp.StatusCode, body)
	}
}

// A provider that closes after each answer gets a fresh connection per
// request, and each request still succeeds.
func TestUpstreamProviderWithoutKeepAlive(t *testing.T) {
	conns := newConnLog()
	p := echoProvider(t, conns.hook, func(s *httptest.Server) { s.Config.SetKeepAlivesEnabled(false) })
	readMetadataTimes(t, startSSP(t, testConfig(), registry(p.root)), p, 3)
	if n := conns.count(); n != 3 {
		t.Errorf("provider saw %d connections, want 3", n)
	}
}

// A consumer that hangs up while the provider is still working ends the
// provider's request too: the SSP does not hold the provider leg open for
// nobody.
func TestUpstreamConsumerHangsUp(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		ended <- struct{}{}
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.ReadMetadata)
	conn, err := tls.Dial("tcp", s.addr, consumerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET /%s/metadata HTTP/1.1\r\nHost: %s\r\n", p.root, s.addr)
	validHeaders(in, p.root).Write(&b)
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the provider")
	}
	conn.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the provider's request was not ended after the consumer hung up")
	}
	// The transaction record says the consumer went away.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		txs, err := s.store.Transactions(audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(txs) == 1 {
			if !txs[0].ClientAborted || txs[0].Decision != "error" {
				t.Errorf("transaction %+v, want client_aborted and decision error", txs[0])
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no transaction record")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// smugglingProvider answers each request with "answer-N" and then, unasked,
// a whole second HTTP answer: at once (in the same write) or when the test
// says so (after the SSP has finished with the connection).
func smugglingProvider(t *testing.T, later, wrote chan struct{}) (root string) {
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
	var mu sync.Mutex
	n := 0
	return rawProvider(t, func(c net.Conn, _ *http.Request, _ int) bool {
		mu.Lock()
		n++
		body := fmt.Sprintf("answer-%d", n)
		mu.Unlock()
		out := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		if later == nil {
			out += smuggled
		}
		if _, err := io.WriteString(c, out); err != nil {
			return false
		}
		if later != nil {
			<-later
			io.WriteString(c, smuggled)
			wrote <- struct{}{}
		}
		return true
	})
}

// rawProvider is a provider with no HTTP server: a TLS listener whose
// connections read requests one after another and hand each, with its
// index on the connection, to answer, which writes whatever it likes and
// returns false to close the connection. It returns the service root.
func rawProvider(t *testing.T, answer func(c net.Conn, req *http.Request, i int) bool) string {
	t.Helper()
	cert, pool := providerPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if !answer(c, req, i) {
						return
					}
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://localhost:" + port + "/A20047/STU3/1/gpconnect"
}

// A provider may close a kept-alive connection just as the SSP sends on
// it, after the check before reuse. A read is then sent again on a new
// connection; a booking is not, because the provider may have acted on it.
func TestUpstreamResendsOnlyReads(t *testing.T) {
	var mu sync.Mutex
	var got []string // method of every request the provider read
	root := rawProvider(t, func(c net.Conn, req *http.Request, i int) bool {
		mu.Lock()
		got = append(got, req.Method)
		mu.Unlock()
		if i == 1 {
			return false // the second request on a connection: closed, unanswered
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	s := startSSP(t, testConfig(), registry(root))
	read := mustLookup(t, gpconnect.ReadMetadata)
	for i := range 2 {
		resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+root+"/metadata", validHeaders(read, root), "")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("GET %d: %d %s", i, resp.StatusCode, body)
		}
	}
	book := mustLookup(t, gpconnect.CreateAppointment)
	h := validHeaders(book, root)
	h.Set("Content-Type", gpconnect.MIMEJSON)
	resp := rawExchange(t, s.addr, consumerTLS(t), "POST", "/"+root+"/Appointment", h, `{"resourceType":"Appointment"}`)
	if body := readBody(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST on a connection closed unanswered: %d %s, want 502", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"GET", "GET", "GET", "POST"}; !slices.Equal(got, want) {
		t.Errorf("provider read %v, want %v (the second GET twice, the POST once)", got, want)
	}
}

// Bytes a provider sends after its answer, asked for by nobody, must never
// become the answer to the next consumer's request.
func TestUpstreamNeverPassesUnaskedBytes(t *testing.T) {
	for _, when := range []string{"with the answer", "after the answer"} {
		t.Run(when, func(t *testing.T) {
			var later, wrote chan struct{}
			if when == "after the answer" {
				later, wrote = make(chan struct{}), make(chan struct{})
			}
			root := smugglingProvider(t, later, wrote)
			s := startSSP(t, testConfig(), registry(root))
			in := mustLookup(t, gpconnect.ReadMetadata)
			for i := 1; i <= 3; i++ {
				resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+root+"/metadata", validHeaders(in, root), "")
				body := readBody(t, resp)
				if want := fmt.Sprintf("answer-%d", i); resp.StatusCode != http.StatusOK || body != want {
					t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
				}
				if later != nil {
					later <- struct{}{} // the provider now sends its unasked answer
					<-wrote
				}
			}
		})
	}
}
