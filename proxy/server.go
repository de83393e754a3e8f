package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/faults"
	"sspemu/gpconnect"
)

// Auditor is where the chain makes its records durable; *audit.Store is one.
// Append returns once the record is durable; QueueTransaction does not wait,
// since the request is already answered.
type Auditor interface {
	Append(ctx context.Context, r *audit.Record) (uint64, error)
	QueueTransaction(t *audit.Transaction) error
}

// Metrics receives one observation per request; NopMetrics is the default.
type Metrics interface {
	Request(interaction string, outcome gpconnect.Decision, rule gpconnect.Rule, seconds float64)
	Upstream(seconds float64)
}

// NopMetrics discards every observation.
type NopMetrics struct{}

func (NopMetrics) Request(string, gpconnect.Decision, gpconnect.Rule, float64) {}
func (NopMetrics) Upstream(float64)                                            {}

// Options are what New needs besides the ssp: section.
type Options struct {
	Config Config // with ResolvePKI already applied
	// Registry returns the table in force; it is read once per request, so a
	// reload never changes the rules under a request in flight.
	Registry func() *agreements.Table
	Audit    Auditor // required: the SSP never forwards what it has not audited
	Metrics  Metrics
	Logger   *slog.Logger
	Now      func() time.Time
	// Observer is told how each request travelled and of each refused
	// TLS handshake (the live console); nil tells no one.
	Observer Observer
	// Faults are the fault rules; those at: ssp act after the checks,
	// before the audit and the forward. nil: none.
	Faults *faults.Set
}

// Server is one SSP: a consumer-facing TLS listener in front of the check
// chain and the forwarding engine.
type Server struct {
	cfg        Config
	registry   func() *agreements.Table
	audit      Auditor
	metrics    Metrics
	log        *slog.Logger
	now        func() time.Time
	serverTLS  *tls.Config
	provider   *upstream // the provider leg: the engine's one RoundTripper
	engine     *goproxy.ProxyHttpServer
	handler    http.Handler
	identities identities
	observer   Observer
	faults     *faults.Set

	mu       sync.Mutex
	srvs     []*http.Server
	shutdown bool // Shutdown has begun: a Serve that starts later serves nothing
}

// New builds the server: TLS on both legs, the engine and the chain.
func New(opt Options) (*Server, error) {
	if err := opt.Config.Validate(); err != nil {
		return nil, err
	}
	if opt.Registry == nil || opt.Audit == nil {
		return nil, errors.New("proxy: a registry and an audit log are required")
	}
	s := &Server{
		cfg:      opt.Config,
		registry: opt.Registry,
		audit:    opt.Audit,
		metrics:  opt.Metrics,
		log:      opt.Logger,
		now:      opt.Now,
		observer: opt.Observer,
		faults:   opt.Faults,
	}
	if s.metrics == nil {
		s.metrics = NopMetrics{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.serverTLS, err = s.cfg.ServerTLS(); err != nil {
		return nil, err
	}
	clientTLS, err := s.cfg.ClientTLS()
	if err != nil {
		return nil, err
	}
	s.provider = s.newUpstream(clientTLS)
	s.engine = s.newEngine()
	// Every request enters the check chain, net/http's handler; only its
	// last step hands a cleared request to the engine (forward.go), which
	// refuses any other.
	s.handler = s.buildChain()
	return s, nil
}

// Handler is the SSP's whole request path, for a caller that serves TLS
// itself (tests use it with httptest and TLSConfig).
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig is the consumer-facing TLS configuration.
func (s *Server) TLSConfig() *tls.Config { return s.serverTLS.Clone() }

// The consumer leg's fixed limits: the time for the TLS handshake and for
// the request head (each), and the size of the head.
const (
	headerTimeout  = 10 * time.Second
	maxHeaderBytes = 64 << 10
)

// Serve answers consumers on ln over TLS until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	// Refused handshakes (no certificate, another CA, revoked, an old
	// protocol or suite) never reach the chain; the consumer sees only a
	// TLS alert, so the reason is logged where a developer sees it,
	// counted and shown in the console (journey.go).
	errorLog := s.serverErrorLog()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: headerTimeout,
		// The write deadline must leave room for a full upstream wait and
		// a streamed answer, or a 504 could never be written.
		WriteTimeout:   s.cfg.UpstreamTimeout + 60*time.Second,
		IdleTimeout:    s.cfg.idleTimeout(),
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       errorLog,
		// Every request reaches the chain (an OPTIONS * too), so each
		// request head the connection's scanner saw meets its handler.
		DisableGeneralOptionsHandler: true,
		ConnContext:                  withConn,
		// HTTP/1.1 only, as on the Spine.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return ln.Close() // Shutdown came first: it could not close this listener
	}
	s.srvs = append(s.srvs, srv)
	s.mu.Unlock()
	err := srv.Serve(&consumerListener{
		Listener:         ln,
		tls:              s.serverTLS,
		logf:             errorLog.Printf,
		handshakeTimeout: headerTimeout,
		maxHead:          maxHeaderBytes + 8<<10, // net/http reads up to MaxHeaderBytes + 4 KiB
	})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets requests in flight finish, and closes the
// provider leg's idle connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	srvs := s.srvs
	s.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		errs = append(errs, srv.Shutdown(ctx))
	}
	s.provider.closeIdle(true)
	return errors.Join(errs...)
}

// buildChain assembles the request path of design.md in its order; each step
// either refuses, naming its rule, or calls the next.
func (s *Server) buildChain() http.Handler {
	steps := []func(http.Handler) http.Handler{
		s.begin,            // scope, trace and the transaction record
		s.checkLimits,      // limits: header fields, declared body size, framing
		s.checkMethod,      // 2. method (and the CORS preflight)
		s.checkTarget,      // 3. target
		s.checkSspHeaders,  // 4. ssp-headers
		s.checkRegistry,    // 5-6. cert-asid, sender, receiver, endpoint, agreement
		s.checkJWT,         // 7. jwt
		s.checkInteraction, // 8. interaction-route
		s.checkFaults,      // fault (faults at: ssp)
	}
	var h http.Handler = http.HandlerFunc(s.forward) // limits (the body), 9-10.
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}
