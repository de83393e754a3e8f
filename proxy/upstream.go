package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// upstream is the provider leg: keep-alive mutual-TLS connections pooled
// per provider address, each carrying one request at a time, written and
// read by the goroutine that serves that request. It stands where
// http.Transport stood: the Transport gives every connection a read and a
// write goroutine and hands each request and answer between them, and
// under the bench's load those handoffs cost about as much CPU as the
// whole of nginx's work per request (bench/README.md, "what was tried").
//
// Requests and answers are framed by net/http itself (ReadResponse and its
// body readers); upstream only writes the request head, which it builds
// from a request net/http's server has already parsed and validated.
type upstream struct {
	tls     *tls.Config
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration // ssp.upstream_timeout: for the answer's head, and for any gap in its body
	maxIdle int           // idle connections kept per provider address
	idleTTL time.Duration // an idle connection older than this is closed, not reused

	mu     sync.Mutex
	idle   map[string][]*upConn // per address; the most recently used last
	closed bool
}

// upConn is one connection to a provider.
type upConn struct {
	addr   string
	conn   *tls.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool // it has carried a request before this one
}

func newUpstream(cfg *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) *upstream {
	return &upstream{
		tls:     cfg,
		dial:    dial,
		timeout: timeout,
		maxIdle: 256,
		idleTTL: 90 * time.Second,
		idle:    map[string][]*upConn{},
	}
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads
// and writes on the connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

// errUpstreamTimeout marks a provider that did not answer within
// ssp.upstream_timeout.
var errUpstreamTimeout = errors.New("upstream timeout")

// upstream is the SSP's one http.RoundTripper toward providers: goproxy
// calls it for every request the chain cleared (forward.go).
var _ http.RoundTripper = (*upstream)(nil)

// RoundTrip sends req to the provider named by req.URL (absolute: https,
// the provider's host, the path in Opaque as the consumer sent it, the raw
// query) and returns its answer, whose body streams from the connection.
// The connection goes back to the pool when the body has been read to its
// end, and is closed otherwise. Errors: errUpstreamTimeout when the
// provider did not answer within the timeout; anything else is a failed
// dial, handshake, write or a malformed answer.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" || req.URL.Host == "" {
		return nil, errors.New("the provider leg carries only absolute https requests")
	}
	addr := req.URL.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(trimBrackets(addr), "443")
	}
	deadline := time.Now().Add(u.timeout)
	for attempt := 0; ; attempt++ {
		uc, err := u.get(req, addr, deadline, attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, retry, err := u.exchange(uc, req, deadline)
		if err == nil {
			return resp, nil
		}
		uc.close()
		if !retry || attempt > 0 {
			return nil, err
		}
		// A pooled connection the provider closed as the request went
		// out (after the check before reuse), with no answer begun: a read
		// goes again on a fresh one.
	}
}

// exchange writes req on uc and reads the head of the answer. retry says
// the request may be sent again on a fresh connection: uc had been idle in
// the pool and failed before any byte of an answer, and req is one that can
// be sent twice.
func (u *upstream) exchange(uc *upConn, req *http.Request, deadline time.Time) (_ *http.Response, retry bool, _ error) {
	ctx := req.Context()
	if err := uc.conn.SetDeadline(deadline); err != nil {
		return nil, false, err
	}
	// A consumer that goes away ends the wait for the provider.
	stop := context.AfterFunc(ctx, func() { uc.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error, beforeAnswer bool) (*http.Response, bool, error) {
		stop()
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("the consumer went away: %w", ctx.Err())
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, false, fmt.Errorf("%w: %v", errUpstreamTimeout, err)
		}
		return nil, beforeAnswer && uc.reused && replayable(req), err
	}
	if err := writeRequest(uc.bw, req); err != nil {
		return fail(err, true)
	}
	if _, err := uc.br.Peek(1); err != nil {
		return fail(err, true)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(uc.br, req)
		if err != nil {
			return fail(err, false)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx interim answers (103 Early Hints) are not passed on.
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("the provider switched protocols; the SSP carries HTTP/1.1 only"), false)
	}
	resp.Body = &upBody{u: u, uc: uc, body: resp.Body, stop: stop, keep: !resp.Close}
	return resp, false, nil
}

// replayable reports whether req can be sent twice without harm: a method
// that changes nothing, or whose repetition has the same effect, with no
// body to have been consumed.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// writeRequest writes the request head, in origin form with the target's
// path and query exactly as the consumer sent them (the URL's Opaque, as
// forward sets it, else its escaped path), and the body framed by its
// length (or chunked when the consumer chunked it).
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	u := req.URL
	path := u.Opaque
	if path == "" {
		path = u.EscapedPath()
	}
	host := req.Host
	if host == "" {
		host = u.Host
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if u.RawQuery != "" || u.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Expect":
			continue // framed here; the SSP sends a body without waiting
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	switch {
	case hasBody && req.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		n, err := io.CopyN(bw, req.Body, req.ContentLength)
		if err != nil {
			return fmt.Errorf("the consumer's body ended after %d of %d bytes: %w", n, req.ContentLength, err)
		}
	case hasBody && req.ContentLength < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, req.Body); err != nil {
			return fmt.Errorf("the consumer's body: %w", err)
		}
		if err := cw.Close(); err != nil {
			return err
		}
		bw.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n\r\n")
	default:
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// upBody is the answer's body as it streams from the provider. Each read
// may wait up to the upstream timeout; at its end the connection is reused.
type upBody struct {
	u    *upstream
	uc   *upConn
	body io.ReadCloser
	stop func() bool // ends the watch on the consumer's context
	keep bool        // the connection may carry another request
	done bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.uc.br.Buffered() == 0 {
		b.uc.conn.SetReadDeadline(time.Now().Add(b.u.timeout))
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.release(err == io.EOF)
	}
	return n, err
}

// Close ends the answer; a body not read to its end costs the connection.
func (b *upBody) Close() error {
	if !b.done {
		b.release(false)
	}
	return nil
}

func (b *upBody) release(complete bool) {
	b.done = true
	watched := b.stop() // false: the consumer's context fired and poisoned the deadline
	// Bytes already read past the answer's end were not asked for.
	if complete && b.keep && watched && b.uc.br.Buffered() == 0 {
		b.u.put(b.uc)
		return
	}
	b.uc.close()
}

// get returns an idle connection to addr or dials a new one. fresh skips
// the pool (a retry). A pooled connection is checked first: nothing may
// arrive on it between answers, so anything readable (a close, or bytes
// the provider sent unasked) retires it, and no consumer can ever be given
// an answer that was not to its own request.
func (u *upstream) get(req *http.Request, addr string, deadline time.Time, fresh bool) (*upConn, error) {
	if !fresh {
		for {
			uc := u.pop(addr)
			if uc == nil {
				break
			}
			if alive(uc.conn) {
				uc.reused = true
				return uc, nil
			}
			uc.close()
		}
	}
	ctx, cancel := context.WithDeadline(req.Context(), deadline)
	defer cancel()
	raw, err := u.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, u.dialErr(ctx, err)
	}
	cfg := u.tls.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, u.dialErr(ctx, err)
	}
	return &upConn{addr: addr, conn: conn, br: bufio.NewReaderSize(conn, 8<<10), bw: bufio.NewWriterSize(conn, 8<<10)}, nil
}

func (u *upstream) dialErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", errUpstreamTimeout, err)
	}
	return err
}

// pop takes the most recently used idle connection to addr, closing any
// that have been idle longer than idleTTL (they lie below it).
func (u *upstream) pop(addr string) *upConn {
	u.mu.Lock()
	defer u.mu.Unlock()
	list := u.idle[addr]
	n := len(list)
	if n == 0 {
		return nil
	}
	uc := list[n-1]
	list[n-1] = nil
	u.idle[addr] = list[:n-1]
	if time.Since(uc.idleAt) > u.idleTTL {
		for _, old := range list[:n-1] {
			old.conn.Close()
		}
		clear(list)
		u.idle[addr] = list[:0]
		uc.conn.Close()
		return nil
	}
	return uc
}

// put returns a connection whose answer was read to its end.
func (u *upstream) put(uc *upConn) {
	uc.idleAt = time.Now()
	u.mu.Lock()
	if u.closed || len(u.idle[uc.addr]) >= u.maxIdle {
		u.mu.Unlock()
		uc.close()
		return
	}
	u.idle[uc.addr] = append(u.idle[uc.addr], uc)
	u.mu.Unlock()
}

// closeIdle closes every idle connection; with shut, later answers close
// their connections rather than pool them.
func (u *upstream) closeIdle(shut bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = u.closed || shut
	for addr, list := range u.idle {
		for _, uc := range list {
			uc.conn.Close()
		}
		delete(u.idle, addr)
	}
}

func (uc *upConn) close() { uc.conn.Close() }

func trimBrackets(host string) string {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}
