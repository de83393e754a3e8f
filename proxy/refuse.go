package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"sspemu/gpconnect"
)

// ReasonHeader carries the plain-language reason of every refusal.
const ReasonHeader = "Sspemu-Reason"

// refuseSSP answers with the SSP's own body (ssp-behaviour §4): the token is
// both display and diagnostics, byte for byte.
func (s *Server) refuseSSP(w http.ResponseWriter, r *http.Request, rule string, status int, token, reason string) {
	sc := scopeFrom(r.Context())
	sc.decision, sc.rule, sc.status, sc.sspToken, sc.reason = "refused", rule, status, token, reason
	if !s.record(w, r, sc) {
		return
	}
	setReason(w.Header(), reason)
	gpconnect.WriteOutcome(w, sc.format, status, gpconnect.SSPOutcome(status, token))
}

// refuseProvider answers as a GP Connect provider would (ssp-behaviour §7),
// for the checks the real path leaves to the provider; the diagnostics say
// what to change.
func (s *Server) refuseProvider(w http.ResponseWriter, r *http.Request, rule string, status int, code, reason string) {
	sc := scopeFrom(r.Context())
	sc.decision, sc.rule, sc.status, sc.reason = "refused", rule, status, reason
	if !s.record(w, r, sc) {
		return
	}
	setReason(w.Header(), reason)
	gpconnect.WriteOutcome(w, sc.format, status, gpconnect.ProviderOutcome(status, code, reason))
}

// record makes the audit record durable before anything is answered or
// forwarded. When it cannot, the request is refused with 503 and nothing
// goes on (fail closed).
func (s *Server) record(w http.ResponseWriter, r *http.Request, sc *scope) bool {
	// A consumer that has stopped sending (its connection read ended, which
	// cancels the request's context) still gets its decision recorded: the
	// record is evidence whether or not anyone reads the answer.
	seq, err := s.audit.Append(context.WithoutCancel(r.Context()), s.auditRecord(r, sc))
	if err == nil {
		sc.auditSeq = seq
		return true
	}
	s.log.Error("audit record not written: refusing the request", "trace_id", sc.hdr.TraceID, "err", err)
	sc.decision, sc.rule, sc.status, sc.cleared = "error", "audit", http.StatusServiceUnavailable, false
	// Where the log lives and what the OS said are the operator's business
	// (they are in the log line above), not the consumer's.
	reason := "the SSP's audit log is unavailable, so it refuses the request (fail closed); it recovers by itself once the log can be written: try again shortly"
	setReason(w.Header(), reason)
	o := gpconnect.ProviderOutcome(http.StatusServiceUnavailable, gpconnect.CodeInternalServerError, reason)
	o.IssueCode = "transient"
	gpconnect.WriteOutcome(w, sc.format, http.StatusServiceUnavailable, o)
	return false
}

// setReason puts a reason in the Sspemu-Reason header; header values cannot
// hold line breaks or other control bytes.
func setReason(h http.Header, reason string) {
	h.Set(ReasonHeader, strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, reason))
}

// preflight answers a CORS preflight itself (ssp-behaviour §1): 200 with the
// methods of the interactions on the target's path, under the header the NHS
// conformance suite reads (Access-Control-Request-Method) and the standard one.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut}
	if t, err := ParseTarget(r.RequestURI); err == nil {
		sc.target, sc.targetOK = t, true
		if m := pathMethods(sc, t); len(m) > 0 {
			methods = m
		}
	}
	list := strings.Join(methods, ", ")
	sc.decision, sc.status, sc.reason = "answered", http.StatusOK, "CORS preflight answered by the SSP: "+list
	if !s.record(w, r, sc) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Request-Method", list)
	h.Set("Access-Control-Allow-Methods", list)
	h.Set("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, If-Match, Prefer, Ssp-From, Ssp-InteractionID, Ssp-To, Ssp-TraceID")
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// pathMethods finds the interactions whose path fits the target: below the
// registered service root of a provider when the target starts with one,
// else the longest tail of the path that is an interaction's path.
func pathMethods(sc *scope, t Target) []string {
	var rel []string
	for _, sys := range sc.table.Systems() {
		if sys.Endpoint != "" && strings.HasPrefix(t.Raw, sys.Endpoint) {
			rel = []string{strings.TrimPrefix("https://"+t.Host+t.Path, sys.Endpoint)}
			break
		}
	}
	if rel == nil {
		segs := strings.Split(t.Path, "/")
		for i := 1; i < len(segs); i++ {
			rel = append(rel, "/"+strings.Join(segs[i:], "/"))
		}
	}
	for _, p := range rel {
		var methods []string
		for _, in := range gpconnect.RoutesOfPath(p) {
			if !slices.Contains(methods, in.Method) {
				methods = append(methods, in.Method)
			}
		}
		if len(methods) > 0 {
			slices.Sort(methods)
			return methods
		}
	}
	return nil
}

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 that a proxy
// must not pass on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forwardedFor is the RFC 7239 Forwarded element naming the consumer.
func forwardedFor(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if strings.Contains(host, ":") {
		return `for="[` + host + `]"`
	}
	return "for=" + host
}

// targetURL is the outgoing URL: Opaque holds the path exactly as the
// consumer sent it, so nothing on the way re-encodes it.
func targetURL(t Target) *url.URL {
	return &url.URL{Scheme: "https", Host: t.Host, Opaque: t.Path, RawQuery: t.RawQuery, ForceQuery: t.HasQuery && t.RawQuery == ""}
}

// countingWriter counts what goes back to the consumer and flushes as it
// goes when the provider streams without a length.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	length int64 // Content-Length sent, or -1
	// closeConn, when it points at true, ends the connection after this
	// answer, whatever headers the provider's answer brought (the engine
	// replaces the header map's content with them).
	closeConn *bool
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		if w.closeConn != nil && *w.closeConn {
			w.Header().Set("Connection", "close")
		}
		w.status = code
		w.length = -1
		if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if w.length < 0 {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
	return n, err
}

// ReadFrom lets io.Copy hand the provider's body to the server's own copy
// path (no 32 KiB buffer per response) when the length is known; a
// streamed answer goes through Write, which flushes each piece.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if w.length < 0 || !ok {
		buf := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(buf)
		return io.CopyBuffer(writerOnly{w}, r, *buf)
	}
	n, err := rf.ReadFrom(r)
	w.n += n
	return n, err
}

// writerOnly hides ReadFrom so io.CopyBuffer uses the given buffer.
type writerOnly struct{ io.Writer }

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (w *countingWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// complete reports whether the whole announced body went out.
func (w *countingWriter) complete() bool { return w.length < 0 || w.n >= w.length }

// countingBody counts what the consumer sent. It is read only by the
// request's own goroutine (the provider leg writes the body before it
// reads the answer).
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
