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

// newUpstream is the provider leg: mutual TLS with the SSP's client
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

// newEngine is the goproxy server that forwards: only requests the chain
// cleared, over the provider leg, with the SSP's own 502 and 504 bodies.
// Its own transport is never used; it is one that cannot dial.
func (s *Server) newEngine() *goproxy.ProxyHttpServer {
	e := goproxy.NewProxyHttpServer()
	e.Tr = &http.Transport{Proxy: nil, DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("the SSP forwards only over its provider leg")
	}}
	e.KeepAcceptEncoding = true // gzip passes through untouched
	e.Logger = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	e.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		sc := scopeFrom(r.Context())
		if sc == nil || !sc.cleared {
			return r, refusalResponse(r, gpconnect.FormatJSON, &gpconnect.Refusal{Status: http.StatusBadRequest, Code: gpconnect.CodeBadRequest,
				Reason: "request did not pass the SSP's checks", Diagnostics: "the SSP is not a forward proxy: " + prefixHint})
		}
		ctx.RoundTripper = goproxy.RoundTripperFunc(s.roundTrip)
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

// roundTrip calls the provider. No answer (headers) within
// ssp.upstream_timeout is a 504; a failed dial, TLS handshake, reset or
// malformed answer is a 502; both carry the SSP's own body.
func (s *Server) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	sc := scopeFrom(req.Context())
	start := time.Now()
	resp, err := s.upstream.roundTrip(req, sc.target)
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
