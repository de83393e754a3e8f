package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sample is the SSP's footprint at one moment.
type sample struct {
	at         time.Duration
	rssKiB     int64
	threads    int64
	goroutines int64 // -1: not available
}

// soakScenario holds the SSP (the in-process build, which reports its
// goroutines) at a fixed rate for -soak and reports resident memory and
// goroutines at the start and the end, which must not grow.
func (st *stage) soakScenario(ctx context.Context) error {
	st.printf("\n## soak: %d req/s for %s, GET metadata through the SSP (audit.sync interval) to the static provider", st.o.soakRate, st.o.soak)
	ip, err := st.startInProcess(ctx, "sspemu-soak", "interval")
	if err != nil {
		return err
	}
	tokConf, err := st.tokenConfig()
	if err != nil {
		return err
	}
	c := st.gpContender("soak", "https://"+ip.addr+"/"+st.prov.root+"/metadata", tokConf, readMetadata)
	defer c.close()
	take := func(at time.Duration) sample {
		s := sample{at: at, goroutines: -1}
		s.rssKiB, _ = rssKiB(ip.cmd.Process.Pid)
		s.threads, _ = threads(ip.cmd.Process.Pid)
		var b strings.Builder
		if err := get(ctx, "http://"+ip.debug+"/goroutines", &b); err == nil {
			fmt.Sscan(b.String(), &s.goroutines)
		}
		return s
	}
	show := func(label string, s sample) {
		st.printf("%-8s t=%-6s RSS %6.1f MiB  goroutines %5d  threads %3d", label, s.at.Round(time.Second), float64(s.rssKiB)/1024, s.goroutines, s.threads)
	}
	// One-minute slices with a fresh token each; the client and its
	// connections stay, so the load is continuous but for a few ms.
	slice := min(time.Minute, st.o.soak)
	var total, ok int
	var worst time.Duration
	var first, last sample
	warm := min(30*time.Second, st.o.soak/10)
	began := time.Now()
	for elapsed := time.Duration(0); elapsed < st.o.soak; elapsed = time.Since(began) {
		if err := c.renew(ctx); err != nil {
			return err
		}
		d := min(slice, st.o.soak-elapsed)
		if elapsed == 0 && warm > 0 {
			d = warm
		}
		r := attack(ctx, c, st.o.workers, d, st.o.soakRate)
		if err := ctx.Err(); err != nil {
			return err
		}
		total += r.requests
		ok += r.ok
		worst = max(worst, r.quantile(0.99))
		s := take(time.Since(began))
		if first.rssKiB == 0 {
			first = s
			show("start", s)
		} else {
			show("", s)
		}
		last = s
		if r.ok != r.requests {
			st.printf("  failures: codes %v first: %s", r.codes, r.firstErr)
		}
	}
	c.close()
	time.Sleep(3 * time.Second) // let idle connections and their goroutines go
	after := take(time.Since(began))
	show("end", last)
	show("idle", after)
	st.printf("requests %d, success %.5f, worst p99 of a minute %s", total, float64(ok)/float64(max(total, 1)), ms(worst))
	rssGrowth := float64(last.rssKiB-first.rssKiB) / float64(first.rssKiB)
	verdict := "flat"
	var problems []string
	if rssGrowth > 0.20 && last.rssKiB-first.rssKiB > 8<<10 {
		problems = append(problems, fmt.Sprintf("RSS grew %.0f%%", 100*rssGrowth))
	}
	if first.goroutines >= 0 && last.goroutines > first.goroutines+int64(st.o.workers) {
		problems = append(problems, fmt.Sprintf("goroutines grew from %d to %d", first.goroutines, last.goroutines))
	}
	if len(problems) > 0 {
		verdict = "GROWS: " + strings.Join(problems, "; ")
	}
	st.printf("soak verdict: %s (RSS %+.1f%%, goroutines %d -> %d under load, %d when idle)",
		verdict, 100*rssGrowth, first.goroutines, last.goroutines, after.goroutines)
	if strings.HasPrefix(verdict, "GROWS") {
		return errors.New("soak: " + verdict)
	}
	return nil
}
