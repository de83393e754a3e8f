package main

import (
	"context"
	"fmt"
	"time"
)

// lightPhase drives sspemu, nginx and the provider directly at a fixed
// -light-rate (100 req/s), far below what any of them carries, so the
// latency each proxy adds to one call is seen without queueing: the added
// p50 is a proxy's p50 minus direct's, measured in the same round. Each
// contender gets -warmup at the same rate first.
func (st *stage) lightPhase(ctx context.Context, cs []*contender) (map[string][]result, error) {
	st.printf("\n## light load: %d req/s fixed rate, %s per contender per round (+%s warm-up at the same rate)", st.o.lightRate, st.o.lightDuration, st.o.warmup)
	out := map[string][]result{}
	for round := 1; round <= st.o.rounds; round++ {
		for _, c := range cs {
			if err := c.renew(ctx); err != nil {
				return nil, err
			}
			if st.o.warmup > 0 {
				attack(ctx, c, st.o.workers, st.o.warmup, st.o.lightRate)
			}
			r := attack(ctx, c, st.o.workers, st.o.lightDuration, st.o.lightRate)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out[c.name] = append(out[c.name], r)
			st.printf("round %d  %-22s %6.0f req/s  p50 %7s  p90 %7s  p99 %7s  success %.4f%s", round, c.name, r.rps(),
				ms(r.quantile(0.50)), ms(r.quantile(0.90)), ms(r.quantile(0.99)), r.success(), failures(r))
		}
	}
	return out, nil
}

// lightSummary prints the light phase's table (medians of the rounds; the
// added p50 per round against direct in the same round) and its check.
func (st *stage) lightSummary(rs map[string][]result, order []string, direct string) {
	added := func(name string) float64 {
		var v []float64
		for i, r := range rs[name] {
			if i < len(rs[direct]) {
				v = append(v, msf(r.quantile(0.5))-msf(rs[direct][i].quantile(0.5)))
			}
		}
		return median(v)
	}
	st.printf("\n| light load, %d req/s | p50 ms | p99 ms | added p50 ms (vs direct) | success |", st.o.lightRate)
	st.printf("|---|---:|---:|---:|---:|")
	for _, name := range order {
		var p50, p99 []float64
		ok, n := 0, 0
		for _, r := range rs[name] {
			p50 = append(p50, msf(r.quantile(0.5)))
			p99 = append(p99, msf(r.quantile(0.99)))
			ok += r.ok
			n += r.requests
		}
		a := "—"
		if name != direct {
			a = fmt.Sprintf("%.3f", added(name))
		}
		st.printf("| %s | %.3f | %.3f | %s | %.4f |", name, median(p50), median(p99), a, float64(ok)/float64(max(n, 1)))
	}
	s, n := added("sspemu"), added("nginx")
	st.check("added p50 latency at 100 req/s", fmt.Sprintf("≤ nginx's + 0.25 ms (%.3f ms)", n+0.25),
		fmt.Sprintf("%.3f ms", s), s <= n+0.25)
}

// lightDefaults: the light phase's rate and length.
const (
	defaultLightRate     = 100
	defaultLightDuration = 5 * time.Second
)
