package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/admin"
	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/certs"
	"sspemu/demonstrator"
	"sspemu/proxy"
)

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the SSP (and by default the built-in demonstrator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(viper.New(), file, cmd.Flags())
			if unusable(err) {
				return err
			}
			// Every problem at once, as check-config lists them, rather
			// than the first one per start.
			if err := errors.Join(err, cfg.validate()); err != nil {
				return reportProblems(stderr, err)
			}
			return serve(cmd.Context(), cfg, &reloader{file: file, flags: cmd.Flags(), interval: time.Second}, stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&file, "config", "c", "", "configuration file merged over the embedded default")
	fs.String("listen", "", "the SSP's listen address (ssp.listen)")
	bindFlag(fs, "listen", "ssp.listen")
	fs.String("admin-listen", "", "the admin listener's address (admin.listen)")
	bindFlag(fs, "admin-listen", "admin.listen")
	fs.String("state-dir", "", "where the dev PKI and logs live (state_dir)")
	bindFlag(fs, "state-dir", "state_dir")
	fs.String("fidelity", "", "spec or live (ssp.fidelity)")
	bindFlag(fs, "fidelity", "ssp.fidelity")
	fs.String("jwt", "", "enforce, log or off (ssp.jwt)")
	bindFlag(fs, "jwt", "ssp.jwt")
	fs.Bool("demonstrator", true, "run the built-in provider beside the SSP (demonstrator.enabled)")
	bindFlag(fs, "demonstrator", "demonstrator.enabled")
	return cmd
}

// stack is one running sspemu: the SSP, the admin listener and, when
// enabled, the demonstrator.
type stack struct {
	log       *slog.Logger
	registry  atomic.Pointer[agreements.Table]
	store     *audit.Store // the SSP's
	demoStore *audit.Store // the demonstrator's own
	ssp       *proxy.Server
	demo      *demonstrator.Demonstrator
	servers   []*http.Server
	errc      chan error
	metrics   *admin.Metrics
	reloads   atomic.Int64 // failed reloads, for tests and logs
	ready     atomic.Bool  // every listener serving, not shutting down
	addrs     map[string]string
}

// readiness is /readyz beyond the audit log: every listener up.
func (st *stack) readiness() error {
	if !st.ready.Load() {
		return errors.New("listeners not serving (starting or stopping)")
	}
	return nil
}

func (st *stack) reloadResult(result string) {
	if result != "ok" {
		st.reloads.Add(1)
	}
	st.metrics.Reload(result)
}

// version is the module version the binary was built from, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// serve runs the whole stack until ctx ends, reloading the registry when
// its files change.
func serve(ctx context.Context, cfg Config, rl *reloader, stderr io.Writer) error {
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	tuneGC(log)
	rl.prime(cfg)
	st, err := start(cfg, log)
	if err != nil {
		return err
	}
	rl.st = st
	rl.result = st.reloadResult
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go rl.run(rctx)
	return wait(ctx, st)
}

// tuneGC lets the heap grow to five times the live data before a
// collection (GOGC=400), under a soft 1 GiB limit: the SSP's live heap is a
// few MiB, and the default GOGC=100 spent a fifth of the request path's
// CPU collecting (BenchmarkChain/parallel/forwarded: 85 -> 68 µs per
// request). GOGC and GOMEMLIMIT in the environment still decide.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
	log.Debug("garbage collector tuned", "gogc_env", os.Getenv("GOGC"), "gomemlimit_env", os.Getenv("GOMEMLIMIT"))
}

// wait serves until ctx ends or a listener fails, then shuts the stack down,
// saying so in the log: a stack that stops without a word looks like one
// that crashed.
func wait(ctx context.Context, st *stack) error {
	var err error
	why := "stopped"
	select {
	case <-ctx.Done():
		if cause := context.Cause(ctx); cause != nil {
			why = cause.Error() // "interrupt signal received"
		}
	case err = <-st.errc:
		st.ready.Store(false)
		why = err.Error()
	}
	st.log.Info("sspemu shutting down: finishing requests in flight (10 s at most)", "reason", why)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := st.shutdown(sctx)
	if serr != nil {
		st.log.Error("sspemu shut down with errors", "err", serr)
	} else {
		st.log.Info("sspemu shut down: the audit logs are closed")
	}
	return errors.Join(err, serr)
}

// ensurePKI makes the dev PKI in <state_dir>/pki when it is missing.
func ensurePKI(cfg Config, log *slog.Logger) error {
	created, err := certs.Ensure(cfg.PKIDir(), certs.Options{})
	if err != nil {
		return fmt.Errorf("dev PKI in %s: %w", cfg.PKIDir(), err)
	}
	if created {
		log.Info("created the dev PKI", "dir", cfg.PKIDir(), "consumer_cert", filepath.Join(cfg.PKIDir(), certs.ConsumerFile))
	} else {
		log.Info("using the dev PKI", "dir", cfg.PKIDir())
	}
	return nil
}

// start checks the configuration, makes the dev PKI when missing, opens the
// audit log and every listener, and serves in the background.
func start(cfg Config, log *slog.Logger) (*stack, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ensurePKI(cfg, log); err != nil {
		return nil, err
	}
	if err := cfg.SSP.Files(nil); err != nil {
		return nil, err
	}
	table, err := cfg.Registry.Build()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	st := &stack{log: log, errc: make(chan error, 3), metrics: admin.NewMetrics(version())}
	st.registry.Store(table)

	opts := cfg.Audit.Options()
	opts.Observer = st.metrics
	opts.Logger = log
	if st.store, err = audit.Open(cfg.AuditDir(), opts); err != nil {
		if errors.Is(err, audit.ErrChainBroken) {
			return nil, fmt.Errorf("audit log in %s: %w\nsspemu will not write on top of a damaged chain: run `sspemu audit verify %s` "+
				"to see the first bad record, keep the folder as evidence, and move it aside (or set audit.dir) to start a new chain",
				cfg.AuditDir(), err, cfg.AuditDir())
		}
		return nil, fmt.Errorf("audit log in %s: %w", cfg.AuditDir(), err)
	}
	if cfg.Audit.Sync == audit.SyncNone {
		log.Warn("audit.sync is none: records are not fsynced and a crash can lose them; for benchmarks only")
	}
	ok := false
	defer func() {
		if !ok {
			st.shutdown(context.Background())
		}
	}()

	if st.ssp, err = proxy.New(proxy.Options{
		Config:   cfg.SSP,
		Registry: st.registry.Load,
		Audit:    st.store,
		Metrics:  st.metrics,
		Logger:   log,
	}); err != nil {
		return nil, err
	}
	sspLn, err := net.Listen("tcp", cfg.SSP.Listen)
	if err != nil {
		return nil, fmt.Errorf("ssp.listen: %w", err)
	}
	st.run("ssp", func() error { return st.ssp.Serve(sspLn) })

	if cfg.Demonstrator.Enabled {
		if err := st.startDemonstrator(cfg, table); err != nil {
			sspLn.Close()
			return nil, err
		}
	}

	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	adminSrv := &http.Server{
		Handler: admin.New(admin.Options{
			Registry:     st.registry.Load,
			Audit:        st.store,
			Demonstrator: st.demo,
			Metrics:      st.metrics.Handler(),
			Ready:        st.readiness,
		}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	st.servers = append(st.servers, adminSrv)
	st.run("admin", func() error { return adminSrv.Serve(adminLn) })

	log.Info("sspemu ready",
		"ssp", "https://"+cfg.SSP.Listen,
		"ssp_addr", sspLn.Addr().String(),
		"admin", "http://"+cfg.Admin.Listen,
		"admin_addr", adminLn.Addr().String(),
		"audit", cfg.AuditDir())
	st.addrs = map[string]string{"ssp": sspLn.Addr().String(), "admin": adminLn.Addr().String()}
	ok = true
	st.ready.Store(true)
	return st, nil
}

// startDemonstrator runs the built-in provider on its own mutual-TLS
// listener, accepting only the SSP's client certificate when so configured.
func (st *stack) startDemonstrator(cfg Config, table *agreements.Table) error {
	pki := cfg.PKIDir()
	base := ""
	for _, sys := range table.Systems() {
		if sys.ASID == cfg.Demonstrator.ASID {
			base = sys.Endpoint
		}
	}
	if base == "" {
		base = "https://" + cfg.Demonstrator.Listen + "/" + cfg.Demonstrator.ODS + "/STU3/1/gpconnect"
	}
	// The provider keeps its own audit (ssp-behaviour §8), apart from the
	// SSP's: a store locks its directory.
	auditDir := filepath.Join(cfg.AuditDir(), "demonstrator")
	opts := cfg.Audit.Options()
	opts.Logger = st.log.With("store", "demonstrator")
	store, err := audit.Open(auditDir, opts)
	if err != nil {
		return fmt.Errorf("demonstrator audit log in %s: %w", auditDir, err)
	}
	st.demoStore = store
	d, err := demonstrator.New(demonstrator.Options{
		ASID:    cfg.Demonstrator.ASID,
		ODS:     cfg.Demonstrator.ODS,
		BaseURL: base,
		JWTSkew: cfg.SSP.JWTSkew,
		Audit:   store,
	})
	if err != nil {
		return fmt.Errorf("demonstrator: %w", err)
	}
	certFile, keyFile := cfg.Demonstrator.Cert, cfg.Demonstrator.Key
	if certFile == "" {
		certFile, keyFile = filepath.Join(pki, certs.ProviderFile), filepath.Join(pki, certs.ProviderKeyFile)
	}
	cert, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("demonstrator: %w", err)
	}
	pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
	if err != nil {
		return fmt.Errorf("demonstrator: %w", err)
	}
	name := ""
	if cfg.Demonstrator.RequireSSPClient {
		leaf, err := certs.LoadCertificate(cfg.SSP.ClientCert)
		if err != nil {
			return fmt.Errorf("demonstrator: the SSP's client certificate: %w", err)
		}
		name = leaf.Subject.CommonName
		if name == "" && len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
	}
	ln, err := net.Listen("tcp", cfg.Demonstrator.Listen)
	if err != nil {
		return fmt.Errorf("demonstrator.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           d.Handler(),
		TLSConfig:         demonstrator.ServerTLSConfig(cert, pool, name),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	st.demo = d
	st.servers = append(st.servers, srv)
	st.run("demonstrator", func() error { return srv.ServeTLS(ln, "", "") })
	st.log.Info("demonstrator ready", "url", base, "addr", ln.Addr().String(), "asid", cfg.Demonstrator.ASID, "audit", auditDir,
		"accepts", strings.TrimSpace("client certificate "+name))
	return nil
}

func (st *stack) run(name string, serve func() error) {
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			st.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// shutdown stops the listeners, lets requests finish, then closes the audit
// log so its last batch is on disk.
func (st *stack) shutdown(ctx context.Context) error {
	st.ready.Store(false)
	var errs []error
	if st.ssp != nil {
		errs = append(errs, st.ssp.Shutdown(ctx))
	}
	for _, srv := range st.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	for _, store := range []*audit.Store{st.store, st.demoStore} {
		if store != nil {
			errs = append(errs, store.Close())
		}
	}
	return errors.Join(errs...)
}

// newLogger builds the operational log (separate from the audit).
func newLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log.format: %q is not text or json", c.Format)
}
