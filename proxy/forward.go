package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/elazarl/goproxy"

	"sspemu/gpconnect"
)

// newUpstream is the provider leg, the one http.RoundTripper behind the
// engine (upstream.go says why it is the SSP's own pool rather than an
// http.Transport): mutual TLS with the SSP's client
// certificate, providers verified against provider_ca, pooled keep-alive
// connections, bodies passed as they are, and dials only to hosts of
// registered endpoints.
func (s *Server) newUpstream(clientTLS *tls.Config) *upstream {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !s.registeredAddr(addr) {
			return nil, fmt.Errorf("the SSP dials only registered endpoints; %s is not one", addr)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return newUpstream(clientTLS, dial, s.cfg.UpstreamTimeout)
}

// registeredAddr reports whether host:port is that of a registered
// endpoint, as a last guard under the chain's endpoint rule.
func (s *Server) registeredAddr(addr string) bool {
	for _, ep := range s.registry().Endpoints() {
		host := strings.TrimPrefix(ep, "https://")
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), "443")
		}
		if host == addr {
			return true
		}
	}
	return false
}

// newEngine is goproxy, the forwarding engine of the design card. The
// chain (chain.go) runs first, as net/http's handler; only its last step,
// forward, calls the engine, with a request that passed every check, whose
// audit record is written and whose URL is the absolute target. On that
// path goproxy does, in order:
//
//  1. handleHttp: a ProxyCtx for the request (its session number), and,
//     the URL being absolute, the request handlers below;
//  2. the request handler: refuses (400) a request the chain did not clear,
//     a guard should anything but forward ever call the engine, and gives
//     every cleared request the provider leg, s.provider, as its
//     RoundTripper;
//  3. RemoveProxyHeaders: drops Proxy-Connection, Proxy-Authenticate,
//     Proxy-Authorization and Connection (KeepAcceptEncoding: gzip passes
//     through, Accept-Encoding stays);
//  4. the RoundTripper: s.roundTrip, the provider leg with the SSP's own
//     502 and 504 answers;
//  5. the response handler: hop-by-hop headers removed from the answer;
//  6. the answer's headers copied over the consumer's (replacing what the
//     chain had set), its status written and its body copied as it streams,
//     with a flush per read when the provider chunks or streams events, and
//     its trailers passed on.
//
// Its own transport (Tr) is nil: goproxy would use it only for a request
// without a RoundTripper, and the request handler gives one to every
// request it lets through. Nothing else is wired: the engine is not the
// server's handler, so its NonproxyHandler and CONNECT paths are never
// reached (the chain answers CONNECT with 405).
func (s *Server) newEngine() *goproxy.ProxyHttpServer {
	e := goproxy.NewProxyHttpServer()
	e.Tr = nil
	e.KeepAcceptEncoding = true // gzip passes through untouched
	e.Logger = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	leg := goproxy.RoundTripperFunc(s.roundTrip)
	e.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		sc := scopeFrom(r.Context())
		if sc == nil || !sc.cleared {
			return r, refusalResponse(r, gpconnect.FormatJSON, &gpconnect.Refusal{Status: http.StatusBadRequest, Code: gpconnect.CodeBadRequest,
				Reason: "request did not pass the SSP's checks", Diagnostics: "the SSP is not a forward proxy: " + prefixHint})
		}
		ctx.RoundTripper = leg
		return r, nil
	})
	e.OnResponse().DoFunc(func(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
		if resp != nil {
			removeHopHeaders(resp.Header)
		}
		return resp
	})
	return e
}

// handOver passes a cleared request to the engine and, once the engine has
// copied a whole answer of announced length, pushes it to the consumer at
// once. net/http would send it only when the handler returns, that is
// behind the transaction record, the metrics and the console's journey
// (chain.go, finish), whose work and the goroutines they wake would then lie
// on every call's latency. A streamed answer (no length) is flushed piece by
// piece already (countingWriter).
func (s *Server) handOver(w http.ResponseWriter, out *http.Request) {
	s.engine.ServeHTTP(w, out)
	// The countingWriter may lie under other writers (Unwrap), which pass
	// every byte through to it.
	for u := w; u != nil; {
		if cw, ok := u.(*countingWriter); ok {
			if cw.status != 0 && cw.length > 0 && cw.n >= cw.length {
				cw.Flush()
			}
			return
		}
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		u = uw.Unwrap()
	}
}

// roundTrip calls the provider over the provider leg. No answer (headers)
// within ssp.upstream_timeout is a 504; a failed dial, TLS handshake, reset
// or malformed answer is a 502; both carry the SSP's own body.
func (s *Server) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	sc := scopeFrom(req.Context())
	start := time.Now()
	resp, err := s.provider.RoundTrip(req)
	sc.upstream = time.Since(start)
	if err == nil {
		return resp, nil
	}
	timedOut := errors.Is(err, errUpstreamTimeout)
	if req.Context().Err() != nil && !timedOut {
		sc.clientAborted = true
		return nil, err
	}
	status, reason := http.StatusBadGateway, fmt.Sprintf("the provider at %s could not be reached or gave no valid answer: %v", sc.target.Raw, err)
	if timedOut {
		status, reason = http.StatusGatewayTimeout, fmt.Sprintf("the provider at %s did not answer within ssp.upstream_timeout (%v)", sc.target.Raw, s.cfg.UpstreamTimeout)
	}
	token := "ERROR_COMMUNICATING_TO_ENDPOINT_URL_" + sc.target.Raw
	sc.rule, sc.status, sc.sspToken, sc.reason = gpconnect.RuleUpstream, status, token, reason
	s.log.Warn("provider call failed", "trace_id", sc.hdr.TraceID, "status", status, "err", err)
	return refusalResponse(req, sc.format, &gpconnect.Refusal{Rule: gpconnect.RuleUpstream, Status: status, Shape: gpconnect.ShapeSSP, Token: token, Reason: reason}), nil
}
