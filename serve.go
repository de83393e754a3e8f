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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/admin"
	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/certs"
	"sspemu/console"
	"sspemu/demonstrator"
	"sspemu/faults"
	"sspemu/fhir"
	"sspemu/pds"
	"sspemu/proxy"
	"sspemu/sds"
	"sspemu/spinecall"
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
	sds       *sds.Service // the Spine services, nil when spine.enabled is false
	pds       *pds.Service
	ldap      []*sds.LDAPServer
	console   *console.Console // the live console's journeys, on the admin listener
	journal   *audit.Journal   // the Spine services journal in the audit directory; nil when spine.enabled is false
	// One fault set and one business clock, shared by the SSP (at: ssp) and
	// the practices (at: provider, and their business time), so one admin
	// call reaches both.
	faults *faults.Set
	clock  *faults.Clock
}

// faultsAndClock builds the stack's fault set and clock once.
func (st *stack) faultsAndClock(cfg Config) error {
	if st.faults != nil {
		return nil
	}
	var m faults.Metrics
	if st.metrics != nil {
		m = st.metrics
	}
	set, err := faults.NewSet(cfg.Faults, faults.Options{Metrics: m})
	if err != nil {
		return err
	}
	st.faults, st.clock = set, faults.NewClock(nil)
	return nil
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

// tuneGC sets the garbage collector for the whole process (SSP, practices,
// Spine services): a collection when the heap has grown to three times the
// live data (GOGC=200), under a soft memory limit of 56 MiB. Measured with
// the bench (bench/RESULTS.md, scenario memory and the proxy's RSS column):
// GOGC=400 under the former 1 GiB limit let the SSP alone reach 71-77 MiB
// under the bench's 32 clients, the whole process 172-196 MiB under a burst
// of 64 slot searches and 185-192 MiB with 2,000 idle connections, almost
// all of it garbage waiting for a collection; GOGC=200 with the 56 MiB limit
// gave 52, 73 and 109 MiB, for no CPU per request the bench could tell
// apart. The limit is soft: when the live data itself is larger (2,000
// connections hold about 70 MiB), the collector runs more often but never
// takes more than about half the CPU, and nothing fails. GOGC and
// GOMEMLIMIT in the environment still decide.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(56 << 20)
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
	st := &stack{log: log, errc: make(chan error, 6), metrics: admin.NewMetrics(version())}
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
	if cfg.Spine.Enabled {
		if st.journal, err = st.store.OpenJournal(opts); err != nil {
			return nil, fmt.Errorf("spine journal in %s: %w", cfg.AuditDir(), err)
		}
	}

	if err := st.faultsAndClock(cfg); err != nil {
		return nil, err
	}
	st.console = console.New(console.Options{Logger: log})
	if st.ssp, err = proxy.New(proxy.Options{
		Faults:   st.faults,
		Config:   cfg.SSP,
		Registry: st.registry.Load,
		Audit:    st.store,
		Metrics:  st.metrics,
		Logger:   log,
		Observer: st.console,
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

	if cfg.Spine.Enabled {
		if err := st.startSpine(cfg); err != nil {
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
			Console:      st.console.Handler(adminLn.Addr()),
			TLSRefusals:  st.console.Handshakes,
			Faults:       faults.NewAPI(st.faults, st.clock),
		}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// The console's streams never go idle: end them when shutdown begins.
	adminSrv.RegisterOnShutdown(st.console.Close)
	st.servers = append(st.servers, adminSrv)
	st.run("admin", func() error { return adminSrv.Serve(adminLn) })

	log.Info("sspemu ready",
		"ssp", "https://"+cfg.SSP.Listen,
		"ssp_addr", sspLn.Addr().String(),
		"admin", "http://"+cfg.Admin.Listen,
		"admin_addr", adminLn.Addr().String(),
		"audit", cfg.AuditDir())
	if st.addrs == nil {
		st.addrs = map[string]string{}
	}
	st.addrs["ssp"], st.addrs["admin"] = sspLn.Addr().String(), adminLn.Addr().String()
	ok = true
	st.ready.Store(true)
	return st, nil
}

// startDemonstrator runs the practices on one mutual-TLS listener,
// accepting only the SSP's client certificate when so configured. Each
// practice's base URL (fullUrl, Location, the JWT's aud) is the endpoint
// the registry gives its ASID, as consumers address it.
func (st *stack) startDemonstrator(cfg Config, table *agreements.Table) error {
	pki := cfg.PKIDir()
	practices := cfg.Demonstrator.PracticeList()
	bases := map[string]string{}
	for _, p := range practices {
		bases[p.ODS] = "https://" + cfg.Demonstrator.Listen + demonstrator.ServiceRootPath(p.ODS)
		if sys, ok := table.System(p.ASID); ok && sys.Endpoint != "" {
			bases[p.ODS] = sys.Endpoint
		}
	}
	// The practices keep their own audit (ssp-behaviour §8), apart from the
	// SSP's: a store locks its directory.
	auditDir := filepath.Join(cfg.AuditDir(), "demonstrator")
	opts := cfg.Audit.Options()
	opts.Logger = st.log.With("store", "demonstrator")
	store, err := audit.Open(auditDir, opts)
	if err != nil {
		return fmt.Errorf("demonstrator audit log in %s: %w", auditDir, err)
	}
	st.demoStore = store
	if err := st.faultsAndClock(cfg); err != nil {
		return err
	}
	d, err := demonstrator.New(demonstrator.Options{
		Practices: practices,
		BaseURLs:  bases,
		JWTSkew:   cfg.SSP.JWTSkew,
		Audit:     store,
		Clock:     st.clock.Now,
		Hook:      demonstrator.FaultHook(st.faults),
		// Register Patient asks the Spine's PDS, made just below: it holds
		// the practices' patients, so it needs them first. No request
		// arrives before the listener starts.
		Demographics: func(nhs string) (demonstrator.PDSRecord, bool) { return pdsRecord(st.pds, nhs) },
	})
	if err != nil {
		return fmt.Errorf("demonstrator: %w", err)
	}
	st.pds = newPDS(cfg, d, st.log, st.spineObserver())
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
	// The SSP's client certificate is checked against the dev CA's CRL, as
	// the SSP checks the consumer's: a revoked one is refused at the
	// handshake (`sspemu certs revoke` takes effect without a restart).
	ca, err := certs.LoadCertificate(filepath.Join(pki, certs.CAFile))
	if err != nil {
		return fmt.Errorf("demonstrator: %w", err)
	}
	crl, err := certs.NewCRLChecker(filepath.Join(pki, certs.CRLFile), ca)
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
		TLSConfig:         demonstrator.ServerTLSConfig(cert, pool, name, crl.Check),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		// Refused handshakes (a revoked or foreign certificate, TLS 1.3
		// alone) go to the operational log, not to stderr.
		ErrorLog: slog.NewLogLogger(st.log.Handler(), slog.LevelWarn),
	}
	st.demo = d
	st.servers = append(st.servers, srv)
	st.run("demonstrator", func() error { return srv.ServeTLS(ln, "", "") })
	for _, p := range d.Practices() {
		st.log.Info("practice ready", "ods", p.ODS, "asid", p.ASID, "name", p.Name, "url", p.BaseURL)
	}
	st.log.Info("demonstrator ready", "addr", ln.Addr().String(), "practices", len(practices), "audit", auditDir,
		"accepts", strings.TrimSpace("client certificate "+name))
	return nil
}

// startSpine serves the Spine services a consumer calls before the SSP: the
// SDS and PDS FHIR APIs on one HTTPS listener (the SSP's server
// certificate, no client certificate, as the public APIs), SDS over plain
// LDAP and over LDAPS with TLS MA (exactly TLS 1.2, as the Spine). SDS
// answers from the registry in force, so a reload reaches it at once. PDS
// holds its test patients (registered at the first practice) and asks the
// practices for theirs on every request, so that their seed changes are
// seen at once.
func (st *stack) startSpine(cfg Config) error {
	c := cfg.Spine
	cert, err := certs.LoadKeyPair(cfg.SSP.TLS.Cert, cfg.SSP.TLS.Key)
	if err != nil {
		return fmt.Errorf("spine: the server certificate (ssp.tls.cert/key): %w", err)
	}
	st.sds = sds.New(sds.Options{Registry: st.registry.Load, APIKey: c.APIKey, Logger: st.log, Observe: st.spineObserver()})
	if st.pds == nil { // the practices made it when they run
		st.pds = newPDS(cfg, nil, st.log, st.spineObserver())
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("spine.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           spineHandler(st.sds.Handler(), st.pds.Handler()),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	st.servers = append(st.servers, srv)
	st.run("spine", func() error { return srv.ServeTLS(ln, "", "") })
	if st.addrs == nil {
		st.addrs = map[string]string{}
	}
	st.addrs["spine"] = ln.Addr().String()
	if c.LDAP.Enabled {
		var ldapsTLS *tls.Config
		if c.LDAP.LDAPSListen != "" {
			if ldapsTLS, err = spineLDAPSTLS(cfg, cert); err != nil {
				return err
			}
		}
		for _, l := range []struct {
			name, key, addr string
			tls             *tls.Config
		}{{"ldap", "spine.ldap.listen", c.LDAP.Listen, nil}, {"ldaps", "spine.ldap.ldaps_listen", c.LDAP.LDAPSListen, ldapsTLS}} {
			if l.addr == "" {
				continue
			}
			server, err := st.sds.ServeLDAP(l.addr, l.tls)
			if err != nil {
				return fmt.Errorf("%s: %w", l.key, err)
			}
			st.ldap = append(st.ldap, server)
			st.run("sds "+l.name, server.Wait)
			st.addrs[l.name] = server.Addr()
		}
	}
	st.log.Info("spine ready", "sds", "https://"+c.Listen+sds.BasePath, "pds", "https://"+c.Listen+pds.BasePath,
		"spine_addr", st.addrs["spine"], "ldap_addr", st.addrs["ldap"], "ldaps_addr", st.addrs["ldaps"])
	return nil
}

// spineLDAPSTLS is the LDAPS listener's TLS: exactly TLS 1.2 with the
// Spine's suites, a client certificate from ssp.tls.client_ca required and
// checked against ssp.tls.crl at every handshake.
func spineLDAPSTLS(cfg Config, cert tls.Certificate) (*tls.Config, error) {
	pool, err := certs.LoadCertPool(cfg.SSP.TLS.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("spine.ldap: ssp.tls.client_ca: %w", err)
	}
	ca, err := certs.LoadCertificate(cfg.SSP.TLS.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("spine.ldap: ssp.tls.client_ca: %w", err)
	}
	crl, err := certs.NewCRLChecker(cfg.SSP.TLS.CRL, ca)
	if err != nil {
		return nil, fmt.Errorf("spine.ldap: ssp.tls.crl: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: proxy.SpineCipherSuites, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			return crl.Check(cs.PeerCertificates[0])
		},
	}, nil
}

// spineHandler routes the Spine listener: SDS and PDS below their base
// paths, a JSON 404 elsewhere.
func spineHandler(sdsAPI, pdsAPI http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == sds.BasePath || strings.HasPrefix(p, sds.BasePath+"/"):
			sdsAPI.ServeHTTP(w, r)
		case p == pds.BasePath || strings.HasPrefix(p, pds.BasePath+"/"):
			pdsAPI.ServeHTTP(w, r)
		default:
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":%q}]}`+"\n",
				"this listener serves "+sds.BasePath+"/Endpoint, "+sds.BasePath+"/Device and "+pds.BasePath+"/Patient")
		}
	})
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
	for _, l := range st.ldap {
		errs = append(errs, l.Shutdown(ctx))
	}
	if st.console != nil {
		st.console.Close()
	}
	if st.journal != nil {
		errs = append(errs, st.journal.Close())
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

// spineObserver is told of each call to SDS and PDS: the live console
// (requests only) and the Spine services journal (requests and LDAPS
// handshakes), which `sspemu report` reads for GPC-SPN-TST-01/02.
func (st *stack) spineObserver() spinecall.Observer {
	var journal spinecall.Observer
	if st.journal != nil {
		journal = func(c spinecall.Call) {
			if err := st.journal.Queue(c); err != nil {
				level := slog.LevelError
				if errors.Is(err, audit.ErrClosed) {
					level = slog.LevelDebug // a call on a connection left open past shutdown
				}
				st.log.Log(context.Background(), level, "spine journal entry not written", "service", c.Service, "err", err)
			}
		}
	}
	return spinecall.Tee(spinecall.Requests(st.console.SpineCall), journal)
}

// newPDS is the Spine's PDS: its own test patients (the registered ones at
// the first practice) and, when d runs, the practices' patients, asked on
// every request. The practices' Register Patient and the Spine listener
// share it.
func newPDS(cfg Config, d *demonstrator.Demonstrator, log *slog.Logger, observe spinecall.Observer) *pds.Service {
	opt := pds.Options{Logger: log, Observe: observe}
	if practices := cfg.Demonstrator.PracticeList(); len(practices) > 0 {
		opt.Practice = practices[0].ODS
	}
	if d != nil {
		opt.Source = practicePatients(d, log)
	}
	return pds.New(opt)
}

// pdsRecord is what Register Patient reads of PDS's record for an NHS
// number (a superseded number answers its replacement's record).
func pdsRecord(s *pds.Service, nhs string) (demonstrator.PDSRecord, bool) {
	p, ok := s.Patient(nhs)
	if !ok {
		return demonstrator.PDSRecord{}, false
	}
	rec := demonstrator.PDSRecord{NHSNumber: p.NHSNumber, Family: p.Family, Given: p.Given, Gender: p.Gender,
		BirthDate: p.BirthDate, Deceased: p.DeceasedDateTime != "", Sensitive: p.Restricted}
	if p.Restricted {
		return rec, true // PDS shows no address or telecom of a restricted patient
	}
	if a := p.Address; a != nil {
		rec.Address = &fhir.Address{Use: "home", Line: slices.Clone(a.Lines), PostalCode: a.PostalCode}
	}
	for _, t := range p.Telecom {
		rec.Telecom = append(rec.Telecom, fhir.ContactPoint{System: t.System, Value: t.Value, Use: t.Use})
	}
	return rec, true
}

// practicePatients is PDS's view of the practices' patients. An NHS number
// registered at two practices (a temporary registration beside a regular
// one) is traced to the first practice that holds it, as PDS records one
// registered practice.
func practicePatients(d *demonstrator.Demonstrator, log *slog.Logger) pds.Source {
	return pds.SourceFunc(func() []pds.Patient {
		registered, err := d.Patients()
		if err != nil {
			log.Error("pds: the practices' patients could not be read", "err", err)
			return nil
		}
		seen := make(map[string]bool, len(registered))
		out := make([]pds.Patient, 0, len(registered))
		for _, r := range registered {
			p := r.Patient
			// A temporary registration leaves PDS as it was ("It does not
			// change a patient's registered practice information as held on
			// PDS"): PDS holds the seeded patients, whatever the practice
			// did since. A record never traced is not on PDS at all.
			if seen[p.NHSNumber] || !p.Seeded || p.NotOnPDS {
				continue
			}
			seen[p.NHSNumber] = true
			pt := pds.Patient{NHSNumber: p.NHSNumber, Family: p.Family, Gender: p.Gender,
				BirthDate: p.BirthDate, PracticeODS: r.PracticeODS}
			if p.Given != "" {
				pt.Given = append([]string{p.Given}, p.MoreGiven...)
			}
			pt.Restricted = p.Sensitive
			if p.Deceased != "" {
				pt.DeceasedDateTime = p.Deceased
				if len(p.Deceased) == len(time.DateOnly) {
					pt.DeceasedDateTime += "T00:00:00+00:00"
				}
			}
			for _, t := range p.Telecom {
				if t.Use != "temp" {
					pt.Telecom = append(pt.Telecom, pds.Telecom{System: t.System, Value: t.Value, Use: t.Use})
				}
			}
			if p.Prefix != "" {
				pt.Prefix = []string{p.Prefix}
			}
			if len(p.Address) > 0 {
				a := p.Address[0]
				lines := append(append([]string(nil), a.Line...), a.City)
				pt.Address = &pds.Address{Lines: slices.DeleteFunc(lines, func(s string) bool { return s == "" }),
					PostalCode: a.PostalCode}
			}
			out = append(out, pt)
		}
		return out
	})
}
