package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// contender is one thing under load: a URL, the client identity to present
// and the GP Connect headers, whose bearer token is renewed before each
// round (a token lives 300 s).
type contender struct {
	name    string
	url     string
	tls     *tls.Config
	group   int // the proxy's process group, for its CPU time; 0: none measured
	header  atomic.Pointer[http.Header]
	renewFn func(ctx context.Context) (string, error) // a fresh JWT
	base    http.Header                               // every header but Authorization and Ssp-TraceID
	hc      *http.Client
}

// renew fetches a fresh token.
func (c *contender) renew(ctx context.Context) error {
	h := c.base.Clone()
	if c.renewFn != nil {
		tok, err := c.renewFn(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	c.header.Store(&h)
	return nil
}

// targeter sends the contender's request with a fresh Ssp-TraceID each
// time, as a consumer would.
func (c *contender) targeter() vegeta.Targeter {
	return func(t *vegeta.Target) error {
		h := *c.header.Load()
		out := make(http.Header, len(h)+1)
		for k, v := range h {
			out[k] = v
		}
		out["Ssp-Traceid"] = []string{uuid.NewString()}
		*t = vegeta.Target{Method: http.MethodGet, URL: c.url, Header: out}
		return nil
	}
}

// client is the contender's HTTP client, kept across attacks so the warm-up
// opens the keep-alive connections the measurement uses: HTTP/1.1 only,
// at most workers connections, no environment proxy, no transparent gzip.
func (c *contender) client(workers int) *http.Client {
	if c.hc == nil {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		c.hc = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         dialer.DialContext,
				TLSClientConfig:     c.tls,
				TLSHandshakeTimeout: 10 * time.Second,
				DisableCompression:  true,
				MaxIdleConns:        workers,
				MaxIdleConnsPerHost: workers,
				MaxConnsPerHost:     workers,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   false,
				TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c.hc
}

// close drops the contender's idle connections.
func (c *contender) close() {
	if c.hc != nil {
		c.hc.CloseIdleConnections()
	}
}

// gpHeaders are the headers of a request that passes every SSP check.
func gpHeaders(interaction string) http.Header {
	h := http.Header{}
	h.Set("Ssp-From", "200000000359")
	h.Set("Ssp-To", "918999198993")
	h.Set("Ssp-InteractionID", interaction)
	h.Set("Accept", "application/fhir+json")
	return h
}

// result is one measured attack.
type result struct {
	name     string
	requests int
	ok       int // status 200
	elapsed  time.Duration
	lat      []time.Duration // sorted
	codes    map[int]int
	firstErr string
	proxyCPU cpuTime // CPU time of the proxy's processes in the window
	selfCPU  cpuTime // CPU time of this process (load generator and static provider)
	measured bool    // proxyCPU was measured
	mem      memKiB  // the proxy's resident memory after the window (peak: since it started)
}

// cpuPerRequest is d spread over the requests, in microseconds.
func (r result) cpuPerRequest(d time.Duration) float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(r.requests)
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func (r result) success() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.ok) / float64(r.requests)
}

// quantile is the exact q-quantile of the latencies (nearest rank).
func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	i = max(0, min(i, len(r.lat)-1))
	return r.lat[i]
}

// attack drives c for d: with rate 0 as fast as the workers can go (each
// worker waits for its answer, so the concurrency is exactly workers),
// otherwise at rate requests per second.
func attack(ctx context.Context, c *contender, workers int, d time.Duration, rate int) result {
	atk := vegeta.NewAttacker(
		vegeta.Client(c.client(workers)),
		vegeta.Workers(uint64(workers)),
		vegeta.MaxWorkers(uint64(workers)),
		vegeta.MaxBody(1<<20),
	)
	pacer := vegeta.Rate{Freq: rate, Per: time.Second}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	res := result{name: c.name, codes: map[int]int{}}
	start := time.Now()
	for r := range atk.Attack(c.targeter(), pacer, d, c.name) {
		res.requests++
		res.codes[int(r.Code)]++
		if r.Code == http.StatusOK && r.Error == "" {
			res.ok++
		} else if res.firstErr == "" {
			res.firstErr = fmt.Sprintf("%d %s %.200s", r.Code, r.Error, r.Body)
		}
		res.lat = append(res.lat, r.Latency)
	}
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// measure warms c up, then measures it.
func (st *stage) measure(ctx context.Context, c *contender) (result, error) {
	if err := c.renew(ctx); err != nil {
		return result{}, err
	}
	if st.o.warmup > 0 {
		w := attack(ctx, c, st.o.workers, st.o.warmup, 0)
		if w.ok == 0 {
			return w, fmt.Errorf("%s: no request succeeded in the warm-up (%d sent; first failure: %s)", c.name, w.requests, w.firstErr)
		}
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	p0, s0 := groupCPU(c.group), selfCPU()
	r := attack(ctx, c, st.o.workers, st.o.duration, 0)
	if c.group != 0 {
		r.proxyCPU, r.measured = groupCPU(c.group).sub(p0), true
		r.mem = groupMem(c.group)
	}
	r.selfCPU = selfCPU().sub(s0)
	return r, ctx.Err()
}
