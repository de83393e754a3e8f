// Command bench measures sspemu against nginx as an mTLS-in, mTLS-out
// reverse proxy in front of the same static provider, with the same load
// generator (vegeta, 32 keep-alive HTTP/1.1 workers with client
// certificates), so the cost of every GP Connect check and of the durable
// audit can be read off one table. Everything runs on loopback and stops by
// itself; child processes are ended on exit and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	repo          string
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	workers       int
	scenario      string
	nginxWorkers  string
	soak          time.Duration
	soakRate      int
	profile       string
	keep          bool
	references    bool
	baseline      string
	lightRate     int
	lightDuration time.Duration
	burst         int
	burstDuration time.Duration
	idleConns     int
	sspEnv        string
	role          string // internal: "inprocess" runs the in-process SSP child, "reference" a reference proxy
	childArgs     childOptions
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&o.repo, "repo", "..", "the sspemu repository (built with go build)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every contender once, in the same order")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of one contender in one round")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement (opens the keep-alive connections)")
	fs.IntVar(&o.workers, "workers", 32, "concurrent keep-alive clients")
	fs.StringVar(&o.scenario, "scenario", "proxy", "proxy | slots | memory | all | none (none: only -soak and -profile)")
	fs.IntVar(&o.lightRate, "light-rate", defaultLightRate, "scenario proxy: the light-load phase's fixed rate (req/s) for sspemu, nginx and direct; 0 skips it")
	fs.DurationVar(&o.lightDuration, "light-duration", defaultLightDuration, "scenario proxy: measured time of one contender in one round of the light-load phase")
	fs.IntVar(&o.burst, "burst", 64, "scenario memory: concurrent clients of the burst")
	fs.DurationVar(&o.burstDuration, "burst-duration", 5*time.Second, "scenario memory: length of the burst")
	fs.IntVar(&o.idleConns, "idle-conns", 2000, "scenario memory: idle TLS connections held")
	fs.StringVar(&o.sspEnv, "sspemu-env", "", "extra environment of every sspemu serve, space-separated (e.g. \"GOGC=200 GOMEMLIMIT=64MiB\"), to compare runtime settings")
	fs.StringVar(&o.nginxWorkers, "nginx-workers", "auto", "nginx worker_processes")
	fs.DurationVar(&o.soak, "soak", 0, "after the scenarios, hold sspemu at -soak-rate for this long and report memory and goroutines (e.g. 10m)")
	fs.IntVar(&o.soakRate, "soak-rate", 500, "requests per second of the soak")
	fs.StringVar(&o.profile, "profile", "", "directory: profile the SSP (in-process build of package proxy) under the proxy load and write cpu.pprof, allocs.pprof and their pprof -top")
	fs.BoolVar(&o.references, "references", false, "scenario proxy: also measure two Go proxies that check and audit nothing (httputil.ReverseProxy, and a bare connection loop), the floor Go's HTTP stack sets, and the SSP's handler on that bare loop")
	fs.StringVar(&o.baseline, "baseline", "", "scenario slots: also build this git revision of -repo (e.g. main, or a commit) and measure its demonstrator beside this one's, in the same rounds")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, audit) for inspection")
	fs.StringVar(&o.role, "role", "", "internal: child role")
	o.childArgs.flags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "inprocess":
		err = runInProcess(ctx, o.childArgs)
	case "reference":
		err = runReference(ctx, o.childArgs)
	default:
		err = run(ctx, o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// run sets the stage, runs the chosen scenarios, the profile and the soak,
// and tears everything down.
func run(ctx context.Context, o options, out io.Writer) error {
	switch o.scenario {
	case "proxy", "slots", "memory", "all", "none":
	default:
		return fmt.Errorf("-scenario %q is not proxy, slots, memory, all or none", o.scenario)
	}
	if o.rounds < 1 || o.duration <= 0 || o.workers < 1 {
		return errors.New("-rounds, -duration and -workers must be positive")
	}
	if o.duration > 4*time.Minute {
		return errors.New("-duration must be at most 4m (a token lives 300 s)")
	}
	st, err := newStage(ctx, o, out)
	if err != nil {
		return err
	}
	defer st.close()
	st.describeMachine()

	if o.scenario == "proxy" || o.scenario == "all" {
		if err := st.proxyScenario(ctx); err != nil {
			return err
		}
	}
	if o.scenario == "slots" || o.scenario == "all" {
		if err := st.slotsScenario(ctx); err != nil {
			return err
		}
	}
	if o.scenario == "memory" || o.scenario == "all" {
		if err := st.memoryScenario(ctx); err != nil {
			return err
		}
	}
	st.printChecks()
	if o.profile != "" {
		if err := st.profileScenario(ctx, o.profile); err != nil {
			return err
		}
	}
	if o.soak > 0 {
		if err := st.soakScenario(ctx); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// line prints one line of the report.
func (st *stage) printf(format string, args ...any) {
	fmt.Fprintf(st.out, format, args...)
	if !strings.HasSuffix(format, "\n") {
		fmt.Fprintln(st.out)
	}
}

// checkResult is one of issue 17's targets, measured.
type checkResult struct {
	name, target, measured string
	ok                     bool
}

// check records a target's verdict for the final table.
func (st *stage) check(name, target, measured string, ok bool) {
	st.checks = append(st.checks, checkResult{name, target, measured, ok})
}

// printChecks prints the verdicts of the run as a Markdown table.
func (st *stage) printChecks() {
	if len(st.checks) == 0 {
		return
	}
	st.printf("\n## checks (issue 17; one run, compare within it)\n")
	st.printf("| check | target | measured | verdict |")
	st.printf("|---|---|---:|---|")
	for _, c := range st.checks {
		v := "**not met**"
		if c.ok {
			v = "met"
		}
		st.printf("| %s | %s | %s | %s |", c.name, c.target, c.measured, v)
	}
	if len(st.floors) > 0 {
		st.printf("\nThe floor in the same run (-references), against nginx: Go proxies that check and audit nothing, and the SSP's whole handler on the bare loop in place of net/http's server:")
		for _, f := range st.floors {
			st.printf("- %s", f)
		}
	}
}
