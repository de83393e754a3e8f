package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// component is a part of the request path found in the CPU profile by the
// function whose cumulative time it is.
type component struct{ name, fn string }

// components are read from the profile's cumulative column. Those nested
// in another are indented in the table; "outside" rows are differences.
var components = []component{
	{"net/http server goroutine, whole (conn.serve)", "net/http.(*conn).serve"},
	{"  consumer leg: TLS read and decrypt, head scanner (consumerConn.Read)", "sspemu/proxy.(*consumerConn).Read"},
	{"  net/http: request parsing (readRequest)", "net/http.(*conn).readRequest"},
	{"  net/http: writing the answer (finishRequest)", "net/http.(*response).finishRequest"},
	{"  the SSP's handler, whole (check chain, audit, engine)", "sspemu/proxy.(*Server).begin-fm.(*Server).begin.func1"},
	{"    target step (ParseTarget)", "sspemu/proxy.ParseTarget"},
	{"    Ssp-* headers (ParseSspHeaders)", "sspemu/gpconnect.ParseSspHeaders"},
	{"    registry decision (Decide)", "sspemu/agreements.(*Table).Decide"},
	{"    JWT: golang-jwt decode and claim rules (CheckAuthorization)", "sspemu/gpconnect.JWTPolicy.CheckAuthorization"},
	{"    audit record: encode and hand to the writer (record)", "sspemu/proxy.(*Server).record"},
	{"    goproxy engine, whole (handleHttp)", "github.com/elazarl/goproxy.(*ProxyHttpServer).handleHttp"},
	{"      provider leg: pool, TLS write and read (roundTrip)", "sspemu/proxy.(*Server).roundTrip"},
	{"    the answer pushed to the consumer: TLS write (countingWriter.Flush, from handOver)", "sspemu/proxy.(*countingWriter).Flush"},
	{"    after the answer: transaction record, metrics, console journey (finish)", "sspemu/proxy.(*Server).finish"},
	{"      transaction record: encode and queue (QueueTransaction)", "sspemu/audit.(*Store).QueueTransaction"},
	{"      console journey: built and offered (publish)", "sspemu/proxy.(*Server).publish"},
	{"net/http background read per request (backgroundRead)", "net/http.(*connReader).backgroundRead"},
	{"audit writer goroutines: write(2) of each batch (chain.run)", "sspemu/audit.(*chain).run"},
	{"audit syncer: fsync every interval (syncLoop)", "sspemu/audit.(*chain).syncLoop"},
	{"live console goroutine (Console.run)", "sspemu/console.(*Console).run"},
	{"garbage collector (gcBgMarkWorker)", "runtime.gcBgMarkWorker"},
	{"scheduler (schedule)", "runtime.schedule"},
	{"of all the above: system calls (Syscall6, flat)", "internal/runtime/syscall/linux.Syscall6"},
}

// componentTable prints the CPU per request of each component of the
// profile at path, over requests requests, as a Markdown table.
func (st *stage) componentTable(ctx context.Context, path string, requests int) error {
	b, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=5000", "-nodefraction=0", "-edgefraction=0", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof %s: %w\n%s", path, err, b)
	}
	cum := map[string]time.Duration{}
	flat := map[string]time.Duration{}
	var total time.Duration
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, rest, ok := strings.Cut(line, "Total samples = "); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				total, _ = time.ParseDuration(f[0])
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		fl, err1 := time.ParseDuration(f[0])
		c, err2 := time.ParseDuration(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		cum[name], flat[name] = c, fl
	}
	if requests == 0 || total == 0 {
		return fmt.Errorf("profile %s: no samples or no requests", path)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(requests) }
	st.printf("\n| component (CPU profile of the SSP under the proxy load, %d requests) | µs/req | share |", requests)
	st.printf("|---|---:|---:|")
	st.printf("| **all CPU of the SSP process** | **%.1f** | 100%% |", per(total))
	for _, c := range components {
		d := cum[c.fn]
		if strings.HasPrefix(c.fn, "internal/runtime/syscall") {
			d = flat[c.fn]
		}
		name := strings.ReplaceAll(c.name, "  ", "&nbsp;&nbsp;")
		st.printf("| %s | %.1f | %.0f%% |", name, per(d), 100*float64(d)/float64(total))
	}
	at := func(fn string) time.Duration { return cum[fn] }
	serve, handler := at("net/http.(*conn).serve"), at("sspemu/proxy.(*Server).begin-fm.(*Server).begin.func1")
	engine, leg := at("github.com/elazarl/goproxy.(*ProxyHttpServer).handleHttp"), at("sspemu/proxy.(*Server).roundTrip")
	st.printf("| net/http server outside the handler (conn.serve − handler) | %.1f | %.0f%% |", per(serve-handler), 100*float64(serve-handler)/float64(total))
	st.printf("| goproxy's own work: headers, copy of the answer (engine − provider leg) | %.1f | %.0f%% |", per(engine-leg), 100*float64(engine-leg)/float64(total))
	return nil
}
