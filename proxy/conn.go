package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// consumerListener hands net/http each consumer connection as a
// consumerConn: the TLS handshake is done by the connection itself on its
// first read, and the plaintext is watched request by request on its way
// to net/http's parser (headScanner). net/http cannot be asked what a
// request head held before it normalised it, and it drops Content-Length
// from a request that also has Transfer-Encoding before a handler sees it.
type consumerListener struct {
	net.Listener
	tls *tls.Config
	// logf is the server's error log: a refused handshake is reported in
	// the words net/http uses for its own TLS listeners.
	logf func(format string, args ...any)
	// handshakeTimeout bounds the handshake (net/http's TLS listener uses
	// the smallest of its timeouts, here ReadHeaderTimeout); the head then
	// has its own ReadHeaderTimeout.
	handshakeTimeout time.Duration
	// maxHead is the longest request head net/http reads (MaxHeaderBytes
	// plus its 4 KiB of slack); a longer one ends the watch.
	maxHead int
}

func (l *consumerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &consumerConn{Conn: tls.Server(c, l.tls), l: l, heads: headScanner{maxHead: l.maxHead}}, nil
}

// consumerConn is one consumer's TLS connection as net/http sees it.
type consumerConn struct {
	*tls.Conn
	l *consumerListener

	// Set by the handshake, which net/http's first call (ConnectionState
	// or Read) makes in the connection's goroutine before anything else.
	handshook bool
	hsErr     error
	state     tls.ConnectionState

	heads headScanner
}

// ConnectionState completes the handshake and returns its state. net/http
// asks for it first thing in the connection's own goroutine, where its TLS
// listener would do the handshake, and sets it as every request's TLS.
func (c *consumerConn) ConnectionState() tls.ConnectionState {
	c.ensureHandshake()
	return c.state
}

// ensureHandshake runs the handshake once.
func (c *consumerConn) ensureHandshake() {
	if !c.handshook {
		c.handshook = true
		c.hsErr = c.handshake()
	}
}

// Read completes the handshake first, then reads plaintext and shows it to
// the head scanner before net/http parses it.
func (c *consumerConn) Read(p []byte) (int, error) {
	c.ensureHandshake()
	if c.hsErr != nil {
		return 0, c.hsErr
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.heads.scan(p[:n])
	}
	return n, err
}

// handshake runs the TLS handshake under its own deadline and, when it
// fails, logs and answers as net/http's TLS server does (including its 400
// to a client speaking plain HTTP); the connection then reads as ended, so
// net/http closes it without a word.
func (c *consumerConn) handshake() error {
	if d := c.l.handshakeTimeout; d > 0 {
		_ = c.Conn.SetDeadline(time.Now().Add(d))
	}
	err := c.Conn.HandshakeContext(context.Background())
	if err == nil {
		c.state = c.Conn.ConnectionState()
		// net/http sets its own deadlines from here on (the head's
		// before it reads it).
		_ = c.Conn.SetDeadline(time.Time{})
		return nil
	}
	reason := err.Error()
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader) {
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		_ = re.Conn.Close()
		reason = "client sent an HTTP request to an HTTPS server"
	}
	if c.l.logf != nil {
		c.l.logf("http: TLS handshake error from %s: %v", c.RemoteAddr(), reason)
	}
	return io.EOF
}

// recordLooksLikeHTTP is net/http's test for a TLS record header that is
// really the start of a plain HTTP request.
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsNames are the names of the TLS versions and cipher suites, for the
// audit: tls.CipherSuiteName builds the list of every suite on each call,
// which was 4% of the request path's allocations.
var tlsNames = func() map[uint16]string {
	m := map[uint16]string{}
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range list {
			m[c.ID] = c.Name
		}
	}
	return m
}()

// cipherSuiteName is tls.CipherSuiteName without its allocations.
func cipherSuiteName(id uint16) string {
	if n, ok := tlsNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

type connKey struct{}

// withConn is the server's ConnContext: it makes the consumerConn of a
// request findable from its context.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*consumerConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

func connFrom(ctx context.Context) *consumerConn {
	cc, _ := ctx.Value(connKey{}).(*consumerConn)
	return cc
}

// headInfo is what the scanner saw in one request head.
type headInfo struct {
	method, target   string
	contentLength    bool
	transferEncoding bool
	// last: the scanner stopped following the connection after this head
	// (a Transfer-Encoding body, or framing net/http will refuse), so the
	// connection must close after this request.
	last bool
}

// The scanner's states.
const (
	scanHead    = iota // reading a request head, line by line
	scanBody           // skipping a Content-Length body
	scanStopped        // no longer following the stream
)

// headScanner follows the consumer's byte stream as net/http reads it:
// request heads line by line, then each Content-Length body by its length.
// It frames exactly what net/http frames as long as net/http accepts the
// stream: heads end at the first empty line, lines at LF with an optional
// CR before it, and a body is Content-Length bytes (every copy of the
// header equal, a plain decimal) or absent. A chunked body is not followed:
// the scanner stops and marks that head last, and the SSP closes the
// connection after that request, so it never has to guess where the next
// head begins. Everything net/http refuses ends the connection anyway.
//
// Reads come from one goroutine at a time (net/http's connection goroutine
// or its background read); the handler takes heads from another, hence the
// lock.
type headScanner struct {
	mu      sync.Mutex
	state   int
	maxHead int
	line    []byte // the current line, without its LF
	lineNo  int    // lines of the current head done
	headLen int
	skip    int64 // body bytes still to pass
	cur     headInfo
	lengths []string // Content-Length values of the current head
	heads   []headInfo
}

func (h *headScanner) scan(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(p) > 0 {
		switch h.state {
		case scanStopped:
			return
		case scanBody:
			n := min(int64(len(p)), h.skip)
			p = p[n:]
			if h.skip -= n; h.skip == 0 {
				h.state = scanHead
			}
		case scanHead:
			i := bytes.IndexByte(p, '\n')
			part := p
			if i >= 0 {
				part = p[:i]
			}
			if h.headLen += len(part) + 1; h.headLen > h.maxHead {
				h.stop() // net/http answers 431 and closes
				return
			}
			if i < 0 {
				// The line goes on in the next read: keep its start.
				h.line = append(h.line, part...)
				return
			}
			p = p[i+1:]
			if len(h.line) == 0 {
				h.endLine(part) // the whole line is in this read: no copy
				continue
			}
			h.line = append(h.line, part...)
			h.endLine(h.line)
		}
	}
}

// endLine takes one whole line of a head, without its LF: a slice of the
// read, or of h.line when the line spanned reads.
func (h *headScanner) endLine(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	h.line = h.line[:0] // line still holds the bytes; endHead may drop the buffer
	h.lineNo++
	if h.lineNo == 1 {
		// The request line, cut as net/http cuts it.
		method, rest, _ := strings.Cut(string(line), " ")
		target, _, _ := strings.Cut(rest, " ")
		h.cur.method, h.cur.target = method, target
		return
	}
	if len(line) == 0 {
		h.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		return // continues the previous field's value
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return // net/http refuses the head
	}
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		h.cur.contentLength = true
		h.lengths = append(h.lengths, strings.Trim(string(value), " \t"))
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		h.cur.transferEncoding = true
	}
}

// endHead records the head and decides how its body is framed.
func (h *headScanner) endHead() {
	info := h.cur
	h.state = scanHead
	switch {
	case info.transferEncoding:
		info.last = true
		h.state = scanStopped
	case info.contentLength:
		n, ok := contentLength(h.lengths)
		switch {
		case !ok:
			info.last = true // net/http refuses it
			h.state = scanStopped
		case n > 0:
			h.state, h.skip = scanBody, n
		}
	}
	h.heads = append(h.heads, info)
	h.cur, h.lengths, h.lineNo, h.headLen = headInfo{}, h.lengths[:0], 0, 0
	// The line buffer holds only a line split across reads, and can have
	// grown to a bearer token's length (1-2 KB); an idle keep-alive
	// connection should not keep it.
	if cap(h.line) > 256 {
		h.line = nil
	}
}

// stop ends the watch in the middle of a head: no further head is known.
func (h *headScanner) stop() { h.state = scanStopped }

// contentLength reads the Content-Length values of one head as net/http
// does: every copy the same, a decimal without sign.
func contentLength(vs []string) (int64, bool) {
	for _, v := range vs[1:] {
		if v != vs[0] {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	return int64(n), err == nil
}

// next takes the head of the request net/http has just parsed. ok is false
// when the scanner has no head for it or its request line differs, which
// means the scanner lost the framing: the caller must not trust the
// connection further.
func (h *headScanner) next(method, target string) (info headInfo, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.heads) == 0 {
		return headInfo{last: true}, false
	}
	info = h.heads[0]
	h.heads[0] = headInfo{}
	h.heads = h.heads[1:]
	if info.method != method || info.target != target {
		info.last = true
		return info, false
	}
	return info, true
}
