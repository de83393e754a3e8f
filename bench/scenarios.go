package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	readMetadata = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
	searchSlot   = "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1"
)

// proxyScenario is the comparison: sspemu (every check, audit.sync
// interval, the default) against nginx in front of the same static provider, the same
// sspemu with audit.sync none, and the provider directly.
func (st *stage) proxyScenario(ctx context.Context) error {
	st.printf("\n## scenario proxy: GET metadata through each proxy to the static provider (%d-byte answer)", len(metadataBody))
	ssp, err := st.startSSP(ctx, "sspemu-interval", "interval", false)
	if err != nil {
		return err
	}
	none, err := st.startSSP(ctx, "sspemu-none", "none", false)
	if err != nil {
		return err
	}
	ngx, err := st.startNginx(ctx, "nginx", st.prov.addr)
	if err != nil {
		return err
	}
	path := "/A20047/STU3/1/gpconnect/metadata"
	cs := []*contender{
		st.sspContender("sspemu", ssp, st.prov.root+"/metadata", readMetadata),
		st.gpContender("nginx", "https://"+ngx.addr+path, ssp.config, readMetadata),
		st.sspContender("sspemu sync=none", none, st.prov.root+"/metadata", readMetadata),
		{name: "direct", url: "https://" + st.prov.addr + path, tls: st.consumerTLS, base: gpHeaders(readMetadata)},
	}
	// The proxies' CPU per request: here each proxy process serves only
	// the proxy (in the slots scenario sspemu also hosts the demonstrator).
	cs[0].group, cs[1].group, cs[2].group = ssp.pgid(), ngx.pgid(), none.pgid()
	order := []string{"sspemu", "nginx", "sspemu sync=none", "direct"}
	if st.o.references {
		for _, kind := range []string{"reverse", "loop", "ssp-loop"} {
			ch, addr, err := st.startReference(ctx, kind)
			if err != nil {
				return err
			}
			name := "go " + kind + " (no checks)"
			if kind == "ssp-loop" {
				name = sspLoopName
			}
			c := st.gpContender(name, "https://"+addr+"/"+st.prov.root+"/metadata", ssp.config, readMetadata)
			c.group = ch.pgid()
			cs = append(cs, c)
			order = append(order, c.name)
		}
	}
	rs, err := st.rounds(ctx, cs)
	if err != nil {
		return err
	}
	rows := st.summary(rs, order)
	s, n := rows["sspemu"], rows["nginx"]
	st.check("throughput, sspemu / nginx", "≥ 0.80×", fmt.Sprintf("%.2f× (%.0f / %.0f req/s)", s.rps/n.rps, s.rps, n.rps), s.rps >= 0.8*n.rps && s.succ == 1)
	st.check("p99, sspemu / nginx", "≤ 1.20×", fmt.Sprintf("%.2f× (%.2f / %.2f ms)", s.p99/n.p99, s.p99, n.p99), s.p99 <= 1.2*n.p99)
	for _, name := range order[4:] { // the -references rows
		r := rows[name]
		st.floors = append(st.floors, fmt.Sprintf("%s: throughput %.2f× nginx's, p99 %.2f×, %s µs of CPU per request against nginx's %s", name, r.rps/n.rps, r.p99/n.p99, r.cpu, n.cpu))
	}
	st.check("SSP resident memory, peak under the load", fmt.Sprintf("≤ %d MiB", sspPeakMiB), fmt.Sprintf("%.1f MiB", mib(s.hwm)), s.hwm > 0 && mib(s.hwm) <= sspPeakMiB)
	if st.o.lightRate > 0 {
		// sspemu, nginx, direct, and with -references the Go proxies, which
		// show what Go's runtime and HTTP stack add to one call.
		light := append([]*contender{cs[0], cs[1], cs[3]}, cs[4:]...)
		names := make([]string, len(light))
		for i, c := range light {
			names[i] = c.name
		}
		lr, err := st.lightPhase(ctx, light)
		if err != nil {
			return err
		}
		st.lightSummary(lr, names, "direct")
	}
	return nil
}

// sspLoopName is the "ssp-loop" reference's row: the SSP's whole handler
// on the bare loop instead of net/http's server (ssploop.go).
const sspLoopName = "sspemu handler on go loop (experiment)"

// slotsScenario is a slot search answered by the built-in demonstrator:
// through sspemu, through nginx, and to the demonstrator directly (with
// the SSP's client certificate, the only one it accepts). With -baseline,
// the demonstrator of that revision is measured beside it, directly and
// through its own sspemu, in the same rounds.
func (st *stage) slotsScenario(ctx context.Context) error {
	st.printf("\n## scenario slots: GET Slot search (7 days, _include=Slot:schedule) answered by the demonstrator")
	ssp, err := st.startSSP(ctx, "sspemu-demo", "interval", true)
	if err != nil {
		return err
	}
	ngx, err := st.startNginx(ctx, "nginx-demo", demoAddr(ssp))
	if err != nil {
		return err
	}
	from := workingDay(time.Now().AddDate(0, 0, 1))
	query := fmt.Sprintf("/Slot?start=ge%s&end=le%s&status=free&_include=Slot:schedule",
		from.Format(time.DateOnly), from.AddDate(0, 0, 7).Format(time.DateOnly))
	path := "/A20047/STU3/1/gpconnect" + query
	direct := st.gpContender("demonstrator direct", "https://"+demoAddr(ssp)+path, ssp.config, searchSlot)
	direct.tls = st.sspClientTLS
	// Driven directly, the sspemu process does nothing but the
	// demonstrator's work: its CPU per request is the demonstrator's.
	direct.group = ssp.pgid()
	cs := []*contender{
		st.sspContender("sspemu", ssp, ssp.endpoint+query, searchSlot),
		st.gpContender("nginx", "https://"+ngx.addr+path, ssp.config, searchSlot),
		direct,
	}
	order := []string{"sspemu", "nginx", "demonstrator direct"}
	if st.baseBin != "" {
		base, err := st.startSSPBin(ctx, st.baseBin, "sspemu-demo-baseline", "batch", true)
		if err != nil {
			return err
		}
		bdirect := st.gpContender("demonstrator direct (baseline)", "https://"+demoAddr(base)+path, base.config, searchSlot)
		bdirect.tls = st.sspClientTLS
		bdirect.group = base.pgid()
		cs = append(cs, bdirect, st.sspContender("sspemu (baseline)", base, base.endpoint+query, searchSlot))
		order = append(order, "demonstrator direct (baseline)", "sspemu (baseline)")
	}
	rs, err := st.rounds(ctx, cs)
	if err != nil {
		return err
	}
	st.summary(rs, order)
	if st.baseBin != "" {
		for _, pair := range [][2]string{{"demonstrator direct", "demonstrator direct (baseline)"}, {"sspemu", "sspemu (baseline)"}} {
			n, b := medianRPS(rs[pair[0]]), medianRPS(rs[pair[1]])
			st.printf("%s / %s (-baseline %s): throughput %.2fx", pair[0], pair[1], st.o.baseline, n/b)
		}
	}
	return nil
}

// demoAddr is the demonstrator's loopback address of an sspemu instance.
func demoAddr(s *sspInstance) string {
	a := strings.TrimPrefix(s.endpoint, "https://localhost")
	return "127.0.0.1" + a[:strings.IndexByte(a, '/')]
}

func medianRPS(rs []result) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, r.rps())
	}
	return median(v)
}

func workingDay(t time.Time) time.Time {
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// sspContender sends the SSP's prefix form: the target URL after the SSP's
// own address.
func (st *stage) sspContender(name string, s *sspInstance, target, interaction string) *contender {
	return st.gpContender(name, "https://"+s.addr+"/"+target, s.config, interaction)
}

// gpContender sends url with GP Connect headers and a token from sspemu
// token with config.
func (st *stage) gpContender(name, url, config, interaction string) *contender {
	return &contender{
		name: name, url: url, tls: st.consumerTLS, base: gpHeaders(interaction),
		renewFn: func(ctx context.Context) (string, error) { return st.token(ctx, config, interaction) },
	}
}

// rounds runs every contender once per round, in the same order, so each
// is measured at several points in time (A B A B ...).
func (st *stage) rounds(ctx context.Context, cs []*contender) (map[string][]result, error) {
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	out := map[string][]result{}
	for round := 1; round <= st.o.rounds; round++ {
		for _, c := range cs {
			r, err := st.measure(ctx, c)
			if err != nil {
				return nil, err
			}
			out[c.name] = append(out[c.name], r)
			st.printf("round %d  %-22s %8.0f req/s  p50 %7s  p99 %7s  success %.4f  CPU µs/req: proxy %s, load+provider %.0f  RSS MiB peak %s%s",
				round, c.name, r.rps(), ms(r.quantile(0.50)), ms(r.quantile(0.99)), r.success(),
				proxyCPU(r), r.cpuPerRequest(r.selfCPU.total()), r.mem, failures(r))
		}
	}
	return out, nil
}

func failures(r result) string {
	if r.ok == r.requests {
		return ""
	}
	return fmt.Sprintf("  codes %v first failure: %s", r.codes, r.firstErr)
}

// proxyCPU is the proxy's CPU per request, or "—" when there is no proxy.
func proxyCPU(r result) string {
	if !r.measured {
		return "—"
	}
	return fmt.Sprintf("%.0f (user %.0f, sys %.0f)", r.cpuPerRequest(r.proxyCPU.total()),
		r.cpuPerRequest(r.proxyCPU.user), r.cpuPerRequest(r.proxyCPU.sys))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// summaryRow is one contender's medians over the rounds.
type summaryRow struct {
	rps, p50, p99, succ float64
	lo, hi              float64
	cpu                 string
	hwm, rss            int64 // KiB: the proxy's peak and its resident memory after the last round
}

// summary prints the median of the rounds for each contender as a
// Markdown table, and the ratios of the issue, and returns the rows.
func (st *stage) summary(rs map[string][]result, order []string) map[string]summaryRow {
	rows := map[string]summaryRow{}
	for _, name := range order {
		var rps, p50, p99, cpu []float64
		ok, n := 0, 0
		var mem memKiB
		for _, r := range rs[name] {
			if r.measured {
				cpu = append(cpu, r.cpuPerRequest(r.proxyCPU.total()))
			}
			rps = append(rps, r.rps())
			p50 = append(p50, msf(r.quantile(0.50)))
			p99 = append(p99, msf(r.quantile(0.99)))
			ok += r.ok
			n += r.requests
			mem.hwm = max(mem.hwm, r.mem.hwm)
			mem.rss = r.mem.rss
		}
		c := "—"
		if len(cpu) > 0 {
			c = fmt.Sprintf("%.0f", median(cpu))
		}
		rows[name] = summaryRow{median(rps), median(p50), median(p99), float64(ok) / float64(max(n, 1)), slices.Min(rps), slices.Max(rps), c, mem.hwm, mem.rss}
	}
	st.printf("\n| %s | req/s (median of %d rounds) | range of rounds | p50 ms | p99 ms | success | proxy CPU µs/req | proxy RSS MiB, peak |", "contender", st.o.rounds)
	st.printf("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range order {
		r := rows[name]
		m := "—"
		if r.hwm > 0 {
			m = fmt.Sprintf("%.1f", mib(r.hwm))
		}
		st.printf("| %s | %.0f | %.0f–%.0f | %.2f | %.2f | %.4f | %s | %s |", name, r.rps, r.lo, r.hi, r.p50, r.p99, r.succ, r.cpu, m)
	}
	s := rows["sspemu"]
	for _, other := range order[1:] {
		o := rows[other]
		if strings.Contains(other, "sspemu") {
			st.printf("%s / sspemu: throughput %.2fx, p99 %.2fx", other, o.rps/s.rps, o.p99/s.p99)
			continue
		}
		st.printf("sspemu / %s: throughput %.2fx, p99 %.2fx", other, s.rps/o.rps, s.p99/o.p99)
	}
	return rows
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
