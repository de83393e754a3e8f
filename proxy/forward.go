package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elazarl/goproxy"

	"sspemu/gpconnect"
)

// newTransport is the provider leg: a fresh mutual-TLS connection with the
// SSP's client certificate, providers verified against provider_ca, pooled
// keep-alive connections, bodies passed as they are (no transparent gzip),
// and dials only to hosts of registered endpoints.
func (s *Server) newTransport(clientTLS *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil, // never through an environment proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !s.registeredAddr(addr) {
				return nil, fmt.Errorf("the SSP dials only registered endpoints; %s is not one", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     clientTLS,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
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
// cleared, through our transport, with the SSP's own 502 and 504 bodies.
func (s *Server) newEngine() *goproxy.ProxyHttpServer {
	e := goproxy.NewProxyHttpServer()
	e.Tr = s.transport
	e.KeepAcceptEncoding = true // gzip passes through untouched
	e.Logger = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	e.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		sc := scopeFrom(r.Context())
		if sc == nil || !sc.cleared {
			body := gpconnect.ProviderOutcome(http.StatusBadRequest, gpconnect.CodeBadRequest,
				"the SSP is not a forward proxy: "+prefixHint)
			return r, outcomeResponse(r, gpconnect.FormatJSON, http.StatusBadRequest, body, "request did not pass the SSP's checks")
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

var errUpstreamTimeout = errors.New("upstream timeout")

// roundTrip calls the provider. No answer (headers) within
// ssp.upstream_timeout is a 504; a failed dial, TLS handshake, reset or
// malformed answer is a 502; both carry the SSP's own body.
func (s *Server) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	sc := scopeFrom(req.Context())
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(s.cfg.UpstreamTimeout, func() { cancel(errUpstreamTimeout) })
	start := time.Now()
	resp, err := s.transport.RoundTrip(req.WithContext(ctx))
	stopped := timer.Stop()
	sc.upstream = time.Since(start)
	if err == nil && !stopped {
		resp.Body.Close() // the deadline fired as the answer came
		err = context.Cause(ctx)
	}
	if err == nil {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	timedOut := errors.Is(context.Cause(ctx), errUpstreamTimeout)
	cancel(nil)
	if req.Context().Err() != nil && !timedOut {
		sc.clientAborted = true
		return nil, err
	}
	status, reason := http.StatusBadGateway, fmt.Sprintf("the provider at %s could not be reached or gave no valid answer: %v", sc.target.Raw, err)
	if timedOut {
		status, reason = http.StatusGatewayTimeout, fmt.Sprintf("the provider at %s did not answer within ssp.upstream_timeout (%v)", sc.target.Raw, s.cfg.UpstreamTimeout)
	}
	token := "ERROR_COMMUNICATING_TO_ENDPOINT_URL_" + sc.target.Raw
	sc.rule, sc.status, sc.sspToken, sc.reason = "upstream", status, token, reason
	s.log.Warn("provider call failed", "trace_id", sc.hdr.TraceID, "status", status, "err", err)
	return outcomeResponse(req, sc.format, status, gpconnect.SSPOutcome(status, token), reason), nil
}

// outcomeResponse is an OperationOutcome as a goproxy response.
func outcomeResponse(req *http.Request, f gpconnect.Format, status int, o gpconnect.Outcome, reason string) *http.Response {
	body := o.Marshal(f)
	h := http.Header{}
	h.Set("Content-Type", f.ContentType())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	setReason(h, reason)
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}
