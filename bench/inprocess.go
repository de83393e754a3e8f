package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"sspemu/admin"
	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/console"
	"sspemu/proxy"
)

// childOptions are the flags of the in-process SSP child (-role inprocess).
type childOptions struct {
	pki, listen, debug, endpoint, sync, auditDir string
	reference                                    string // -role reference: reverse | loop
}

func (c *childOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.pki, "child-pki", "", "internal: dev PKI directory")
	fs.StringVar(&c.listen, "child-listen", "", "internal: the SSP's address")
	fs.StringVar(&c.debug, "child-debug", "", "internal: pprof address")
	fs.StringVar(&c.endpoint, "child-endpoint", "", "internal: the provider's service root")
	fs.StringVar(&c.sync, "child-sync", "interval", "internal: audit sync mode")
	fs.StringVar(&c.auditDir, "child-audit", "", "internal: audit directory")
	fs.StringVar(&c.reference, "child-reference", "", "internal: reference proxy kind")
}

// fsyncCounter counts the audit writer's fsyncs and the records they made
// durable, so the profile run can report the group commit's batch size.
type fsyncCounter struct{ fsyncs, records atomic.Int64 }

func (f *fsyncCounter) Fsync(_ float64, n int) { f.fsyncs.Add(1); f.records.Add(int64(n)) }

// benchSSP builds the SSP as sspemu serve builds it (package proxy with the
// same config values, every check enforced, the audit store, the metrics
// and the console observer) for the static provider at o.endpoint (its
// service root), auditing into o.auditDir; the caller closes the store.
func benchSSP(o childOptions, obs audit.Observer) (*proxy.Server, *audit.Store, error) {
	// The collector as sspemu serve tunes it (serve.go, tuneGC), unless
	// the environment says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(56 << 20)
	}
	reg := agreements.Config{
		Systems: []agreements.SystemConfig{
			{ASID: "200000000359", Name: "Example consumer", ODS: "Y12345", PartyKey: "Y12345-0000001",
				FQDN: "consumer.sspemu.localhost", Sends: []string{"foundations", "appointments"}},
			{ASID: "918999198993", Name: "Provider", ODS: "A20047", PartyKey: "A20047-0000002",
				FQDN: "localhost", Endpoint: o.endpoint, CPAID: "S20001A000002", Receives: []string{"foundations", "appointments"}},
		},
		Agreements: []agreements.AgreementConfig{
			{From: "200000000359", To: "918999198993", Interactions: []string{"foundations", "appointments"}},
		},
	}
	table, err := reg.Build()
	if err != nil {
		return nil, nil, err
	}
	store, err := audit.Open(o.auditDir, audit.Options{Sync: o.sync, Observer: obs})
	if err != nil {
		return nil, nil, err
	}
	cfg := proxy.Config{
		Listen:           o.listen,
		TLS:              proxy.TLSConfig{MinVersion: "1.2"},
		Fidelity:         "spec",
		JWT:              proxy.ModeEnforce,
		JWTSkew:          300 * time.Second,
		InteractionRoute: proxy.ModeEnforce,
		UpstreamTimeout:  30 * time.Second,
	}
	cfg.ResolvePKI(o.pki)
	// The metrics and the live console's observer are wired as sspemu
	// serve wires them, so the profile holds their cost too.
	srv, err := proxy.New(proxy.Options{Config: cfg, Registry: func() *agreements.Table { return table }, Audit: store,
		Metrics: admin.NewMetrics("bench"), Observer: console.New(console.Options{})})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return srv, store, nil
}

// runInProcess is the SSP of benchSSP, served as the SSP serves it, in a
// process of its own with net/http/pprof on a second loopback listener, so
// a profile shows the proxy and not the load generator. The operational
// log is discarded and there is no admin listener or demonstrator.
func runInProcess(ctx context.Context, o childOptions) error {
	obs := &fsyncCounter{}
	srv, store, err := benchSSP(o, obs)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/goroutines", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, runtime.NumGoroutine())
	})
	mux.HandleFunc("/fsyncs", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, obs.fsyncs.Load(), obs.records.Load())
	})
	dbg := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	dln, err := net.Listen("tcp", o.debug)
	if err != nil {
		return err
	}
	go func() { errc <- dbg.Serve(dln) }()

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dbg.Shutdown(sctx)
	return srv.Shutdown(sctx)
}

// inProcess is a running in-process SSP child.
type inProcess struct {
	*child
	addr, debug string
}

func (st *stage) startInProcess(ctx context.Context, name, sync string) (*inProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	ip := &inProcess{addr: fmt.Sprintf("127.0.0.1:%d", p1), debug: fmt.Sprintf("127.0.0.1:%d", p2)}
	auditDir := filepath.Join(st.dir, name+"-audit")
	c, err := st.start(name, self, "-role", "inprocess", "-child-pki", st.pki, "-child-listen", ip.addr,
		"-child-debug", ip.debug, "-child-endpoint", st.prov.root, "-child-sync", sync, "-child-audit", auditDir)
	if err != nil {
		return nil, err
	}
	ip.child = c
	if err := c.waitReady(ctx, ip.addr); err != nil {
		return nil, err
	}
	return ip, c.waitReady(ctx, ip.debug)
}

// tokenConfig writes a config whose registry names the static provider,
// for sspemu token.
func (st *stage) tokenConfig() (string, error) {
	path := filepath.Join(st.dir, "token.yaml")
	conf := fmt.Sprintf(sspConfig, filepath.Join(st.dir, "token-state"), "127.0.0.1:1", "127.0.0.1:2", "batch", false, 3, st.prov.root)
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// get fetches url from a loopback debug listener into w.
func get(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// profileScenario runs the proxy load against the in-process SSP and takes
// a CPU profile over the measured window and the allocation profile after
// it, then writes pprof -top of each.
func (st *stage) profileScenario(ctx context.Context, dir string) error {
	st.printf("\n## profile: in-process SSP (package proxy, audit.sync interval), same load as scenario proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ip, err := st.startInProcess(ctx, "sspemu-inprocess", "interval")
	if err != nil {
		return err
	}
	tokConf, err := st.tokenConfig()
	if err != nil {
		return err
	}
	c := st.gpContender("sspemu in-process", "https://"+ip.addr+"/"+st.prov.root+"/metadata", tokConf, readMetadata)
	defer c.close()
	if err := c.renew(ctx); err != nil {
		return err
	}
	if w := attack(ctx, c, st.o.workers, st.o.warmup, 0); w.ok == 0 {
		return fmt.Errorf("profile warm-up: no success (%s)", w.firstErr)
	}
	var f0 strings.Builder
	if err := get(ctx, "http://"+ip.debug+"/fsyncs", &f0); err != nil {
		return err
	}
	secs := max(1, int(st.o.duration/time.Second))
	cpuPath := filepath.Join(dir, "cpu.pprof")
	profErr := make(chan error, 1)
	go func() {
		f, err := os.Create(cpuPath)
		if err != nil {
			profErr <- err
			return
		}
		defer f.Close()
		profErr <- get(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", ip.debug, secs), f)
	}()
	r := attack(ctx, c, st.o.workers, time.Duration(secs)*time.Second, 0)
	if err := <-profErr; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	var f1 strings.Builder
	if err := get(ctx, "http://"+ip.debug+"/fsyncs", &f1); err != nil {
		return err
	}
	allocPath := filepath.Join(dir, "allocs.pprof")
	af, err := os.Create(allocPath)
	if err != nil {
		return err
	}
	err = get(ctx, "http://"+ip.debug+"/debug/pprof/allocs", af)
	af.Close()
	if err != nil {
		return fmt.Errorf("allocs profile: %w", err)
	}
	st.printf("in-process SSP under profiling: %.0f req/s, p50 %s, p99 %s, success %.4f%s", r.rps(),
		ms(r.quantile(0.5)), ms(r.quantile(0.99)), r.success(), failures(r))
	var fs0, rs0, fs1, rs1 int64
	fmt.Sscan(f0.String(), &fs0, &rs0)
	fmt.Sscan(f1.String(), &fs1, &rs1)
	if fs1 > fs0 {
		st.printf("audit group commit: %d fsyncs for %d records (%.1f records per fsync, both chains), %.0f fsyncs/s",
			fs1-fs0, rs1-rs0, float64(rs1-rs0)/float64(fs1-fs0), float64(fs1-fs0)/r.elapsed.Seconds())
	}
	if err := st.componentTable(ctx, cpuPath, r.requests); err != nil {
		return err
	}
	if st.o.lightRate > 0 {
		// The same SSP at the light phase's rate, with an execution trace:
		// where one call's time goes when nothing queues
		// (go tool trace -pprof=sched|net|syscall trace.out).
		tracePath := filepath.Join(dir, "trace.out")
		traceErr := make(chan error, 1)
		go func() {
			f, err := os.Create(tracePath)
			if err != nil {
				traceErr <- err
				return
			}
			defer f.Close()
			traceErr <- get(ctx, fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%d", ip.debug, secs), f)
		}()
		lr := attack(ctx, c, st.o.workers, time.Duration(secs)*time.Second, st.o.lightRate)
		if err := <-traceErr; err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		st.printf("in-process SSP at %d req/s: p50 %s, p90 %s, p99 %s, success %.4f; wrote %s", st.o.lightRate,
			ms(lr.quantile(0.5)), ms(lr.quantile(0.9)), ms(lr.quantile(0.99)), lr.success(), tracePath)
	}
	for _, p := range []struct {
		in, out string
		args    []string
	}{
		{cpuPath, "cpu-top.txt", []string{"-top", "-nodecount=40"}},
		{cpuPath, "cpu-top-cum.txt", []string{"-top", "-cum", "-nodecount=60"}},
		{allocPath, "allocs-top.txt", []string{"-top", "-sample_index=alloc_space", "-nodecount=30"}},
	} {
		args := append([]string{"tool", "pprof"}, p.args...)
		b, err := exec.CommandContext(ctx, "go", append(args, p.in)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s: %w\n%s", p.in, err, b)
		}
		if err := os.WriteFile(filepath.Join(dir, p.out), b, 0o644); err != nil {
			return err
		}
		st.printf("wrote %s", filepath.Join(dir, p.out))
	}
	return nil
}
