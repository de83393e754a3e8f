package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"sspemu/gpconnect"
)

// RuleLimits names the refusals of the consumer leg's limits and framing:
// too many header fields, a body too large or too slow, a malformed body,
// Content-Length with Transfer-Encoding.
const RuleLimits = gpconnect.RuleLimits

// checkLimits refuses, before any other check, a request whose head alone
// breaks the consumer leg's limits: more header fields than
// ssp.max_header_fields (431), a Content-Length above ssp.max_body_bytes
// (413), or both Content-Length and Transfer-Encoding (400, RFC 9112 §6.1:
// the framing is ambiguous, the classic request-smuggling shape). Each of
// these closes the connection: what follows on it cannot be trusted or is
// not worth reading.
func (s *Server) checkLimits(next http.Handler) http.Handler {
	maxFields, maxBody, bodyTimeout := s.cfg.maxHeaderFields(), s.cfg.maxBodyBytes(), s.cfg.bodyTimeout()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		if r.Body != nil && r.Body != http.NoBody {
			// The body has ssp.body_timeout from the end of the head,
			// whoever reads it: readBody before forwarding, or net/http
			// discarding it after a refusal (with no deadline a stalled
			// body would hold the connection for ever). readBody lifts it
			// once the body is in; a request without a body gets none, as
			// net/http's read watching for the consumer leaving would
			// meet it.
			_ = http.NewResponseController(w).SetReadDeadline(sc.start.Add(bodyTimeout))
		}
		if cc := connFrom(r.Context()); cc != nil {
			head, ok := cc.heads.next(r.Method, r.RequestURI)
			// last: the SSP did not follow this connection past this head
			// (a chunked body), so no further request may use it.
			sc.closeConn = head.last
			switch {
			case !ok:
				s.refuseLimit(w, r, http.StatusBadRequest, "invalid",
					"the SSP could not follow the framing of the requests on this connection, so it closes it: send one request at a time, each framed by Content-Length")
				return
			case head.contentLength && head.transferEncoding:
				s.refuseLimit(w, r, http.StatusBadRequest, "invalid",
					"the request has both Content-Length and Transfer-Encoding, whose framings disagree (RFC 9112 section 6.1): send one of them; the SSP closes the connection")
				return
			}
		}
		if n := headerFields(r); n > maxFields {
			s.refuseLimit(w, r, http.StatusRequestHeaderFieldsTooLarge, "too-costly",
				fmt.Sprintf("the request has %d header fields; the SSP takes at most %d (ssp.max_header_fields)", n, maxFields))
			return
		}
		if r.ContentLength > maxBody {
			s.refuseLimit(w, r, http.StatusRequestEntityTooLarge, "too-costly",
				fmt.Sprintf("the request body announces %d bytes; the SSP takes at most %d (ssp.max_body_bytes): GP Connect resources are a few KiB", r.ContentLength, maxBody))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerFields counts the request's header fields as sent: each value of a
// repeated field is a field, and Host (which net/http moves out of the map)
// is one.
func headerFields(r *http.Request) int {
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	if r.Host != "" {
		n++
	}
	return n
}

// refuseLimit answers a limits refusal in the GP Connect provider shape
// (BAD_REQUEST, with an issue type saying what kind of limit) and closes
// the connection after it.
func (s *Server) refuseLimit(w http.ResponseWriter, r *http.Request, status int, issueCode, reason string) {
	scopeFrom(r.Context()).closeConn = true
	s.refuse(w, r, &gpconnect.Refusal{Rule: RuleLimits, Status: status, Code: gpconnect.CodeBadRequest, IssueCode: issueCode, Reason: reason})
}

// readBody reads the whole request body before anything is audited or
// dialled, as nginx does by default (proxy_request_buffering): within
// ssp.body_timeout of the end of the head and at most ssp.max_body_bytes.
// So a body that stalls, overflows or breaks its framing is refused here,
// with its own audit record, and never holds or reaches a provider; and the
// audit record of a forwarded request always describes a whole request.
// On success r carries the body in memory with its length; it reports
// false when it has answered.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	limit, timeout := s.cfg.maxBodyBytes(), s.cfg.bodyTimeout()
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, 32<<10))) // a promise, not yet bytes: grow as they come
	}
	// The deadline checkLimits set bounds this read.
	n, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
	if err == nil && n <= limit {
		// The body is in. net/http now watches the connection for the
		// consumer leaving; that read must not meet the body's deadline
		// while the provider answers.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	if err == nil && n > limit {
		s.refuseLimit(w, r, http.StatusRequestEntityTooLarge, "too-costly",
			fmt.Sprintf("the request body is over %d bytes, the most the SSP takes (ssp.max_body_bytes): GP Connect resources are a few KiB", limit))
		return false
	}
	if err != nil {
		status, issue, reason := bodyError(err, r, n, timeout)
		s.refuseLimit(w, r, status, issue, reason)
		return false
	}
	if n == 0 {
		r.Body, r.ContentLength = http.NoBody, 0
	} else {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(buf.Bytes())), n
		if sc := scopeFrom(r.Context()); sc != nil {
			sc.body = buf.Bytes() // for the audit record's summary (body.go)
		}
	}
	return true
}

// bodyError turns a failed body read into the refusal that says what the
// consumer must change. The reason never holds the server's own error
// text beyond net/http's description of the framing fault.
func bodyError(err error, r *http.Request, n int64, timeout time.Duration) (status int, issue, reason string) {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		got := fmt.Sprintf("%d bytes came", n)
		if r.ContentLength > 0 {
			got = fmt.Sprintf("%d of the %d bytes of its Content-Length came", n, r.ContentLength)
		}
		return http.StatusRequestTimeout, "timeout",
			fmt.Sprintf("the request body did not arrive within %v of the request head (ssp.body_timeout): %s", timeout, got)
	}
	chunked := len(r.TransferEncoding) > 0
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if chunked {
			return http.StatusBadRequest, "invalid", fmt.Sprintf("the chunked request body ended after %d bytes, before its last (zero-length) chunk", n)
		}
		return http.StatusBadRequest, "invalid", fmt.Sprintf("the request body ended after %d of the %d bytes its Content-Length announced: send exactly that many", n, r.ContentLength)
	}
	if chunked && isChunkError(err) {
		return http.StatusBadRequest, "invalid", fmt.Sprintf("the chunked request body is malformed after %d bytes (%s): each chunk is a hexadecimal size, CRLF, that many bytes, CRLF", n, err.Error())
	}
	return http.StatusBadRequest, "invalid", fmt.Sprintf("the request body could not be read after %d bytes: the connection failed", n)
}

// isChunkError recognises net/http's own errors for a malformed chunked
// body (net/http/internal is not importable, so by their text).
func isChunkError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"chunk", "trailer"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
