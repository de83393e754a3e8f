package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"sspemu/proxy"
)

// memKiB is the resident memory of a process group: VmRSS now and VmHWM,
// the peak since each process started, summed over the group's processes
// (nginx's master and workers; one sspemu).
type memKiB struct{ rss, hwm int64 }

func (m memKiB) String() string {
	if m.hwm == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f (now %.1f)", mib(m.hwm), mib(m.rss))
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// groupMem reads VmRSS and VmHWM of every live process in group pgid.
func groupMem(pgid int) memKiB {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return memKiB{}
	}
	var m memKiB
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if group, _, ok := procCPU(pid); !ok || group != pgid {
			continue
		}
		rss, err1 := procStatus(pid, "VmRSS:")
		hwm, err2 := procStatus(pid, "VmHWM:")
		if err1 == nil && err2 == nil {
			m.rss += rss
			m.hwm += hwm
		}
	}
	return m
}

// Targets of issue 17 for resident memory, in MiB.
const (
	sspPeakMiB   = 64  // the SSP under the proxy scenario's load
	burstPeakMiB = 128 // the whole process under a burst of 64 clients
	idleConnsMiB = 100 // the whole process holding 2,000 idle TLS connections
)

// memoryScenario measures the whole sspemu process as `go run .` starts
// it (the SSP, the built-in practices and the Spine services, every
// default but the listeners' ports): its peak under a burst of -burst
// concurrent clients through the SSP to a practice, each on its own new
// connection, and its resident memory holding -idle-conns idle keep-alive
// TLS connections. Each in a fresh process, so one does not inherit the
// other's peak.
func (st *stage) memoryScenario(ctx context.Context) error {
	st.printf("\n## scenario memory: the whole sspemu process (SSP, practices, Spine services; default configuration)")
	from := workingDay(time.Now().AddDate(0, 0, 1))
	query := fmt.Sprintf("/Slot?start=ge%s&end=le%s&status=free&_include=Slot:schedule",
		from.Format(time.DateOnly), from.AddDate(0, 0, 7).Format(time.DateOnly))

	full, err := st.startFull(ctx, "sspemu-burst")
	if err != nil {
		return err
	}
	base := groupMem(full.pgid())
	c := st.sspContender("burst", full, full.endpoint+query, searchSlot)
	if err := c.renew(ctx); err != nil {
		return err
	}
	r := attack(ctx, c, st.o.burst, st.o.burstDuration, 0)
	c.close()
	after := groupMem(full.pgid())
	st.printf("burst: %d clients for %s (slot search through the SSP to practice A20047): %.0f req/s, p99 %s, success %.4f%s",
		st.o.burst, st.o.burstDuration, r.rps(), ms(r.quantile(0.99)), r.success(), failures(r))
	st.printf("burst, after: %s", runtimeMem(ctx, full.admin))
	st.printf("burst: resident memory at start %.1f MiB, peak (VmHWM) %.1f MiB, after %.1f MiB", mib(base.rss), mib(after.hwm), mib(after.rss))
	st.check(fmt.Sprintf("whole process, peak under a burst of %d clients", st.o.burst), fmt.Sprintf("≤ %d MiB", burstPeakMiB),
		fmt.Sprintf("%.1f MiB", mib(after.hwm)), mib(after.hwm) <= burstPeakMiB && r.success() == 1)
	full.stop()

	idle, err := st.startFull(ctx, "sspemu-idle")
	if err != nil {
		return err
	}
	before := groupMem(idle.pgid())
	conns, err := st.openIdle(ctx, idle, st.o.idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	// Let the server's goroutines settle into their idle reads.
	time.Sleep(2 * time.Second)
	held := groupMem(idle.pgid())
	st.printf("idle: %d keep-alive TLS connections, each after one call through the SSP to practice A20047: resident memory %.1f MiB (%.1f before them, %.1f KiB per connection), peak %.1f MiB",
		len(conns), mib(held.rss), mib(before.rss), float64(held.rss-before.rss)/float64(max(1, len(conns))), mib(held.hwm))
	st.printf("idle: %s", runtimeMem(ctx, idle.admin))
	st.check(fmt.Sprintf("whole process holding %d idle TLS connections", st.o.idleConns), fmt.Sprintf("≤ %d MiB", idleConnsMiB),
		fmt.Sprintf("%.1f MiB", mib(held.rss)), mib(held.rss) <= idleConnsMiB)
	return nil
}

// startFull starts sspemu serve with its defaults, as `go run .` does,
// but every listener on a free loopback port (the registry's service roots
// follow the practices' port).
func (st *stage) startFull(ctx context.Context, name string) (*sspInstance, error) {
	ports, state, err := st.prepare(name, 6)
	if err != nil {
		return nil, err
	}
	s := &sspInstance{
		addr:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:    fmt.Sprintf("127.0.0.1:%d", ports[1]),
		config:   filepath.Join(st.dir, name+".yaml"),
		endpoint: fmt.Sprintf("https://localhost:%d/A20047/STU3/1/gpconnect", ports[2]),
		sync:     "interval",
	}
	conf := fmt.Sprintf(fullConfig, state, s.addr, s.admin, ports[2], ports[3], ports[4], ports[5], ports[2], ports[2])
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	c, err := st.startEnv(name, strings.Fields(st.o.sspEnv), st.bin, "serve", "--config", s.config)
	if err != nil {
		return nil, err
	}
	s.child = c
	for _, p := range []int{ports[0], ports[2], ports[3]} {
		if err := c.waitReady(ctx, fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// fullConfig is merged over sspemu's embedded config.yaml: only ports,
// the state directory and the log level differ, and the registry's two
// practices point at the practices' port.
const fullConfig = `state_dir: %s
ssp:
  listen: %s
admin:
  listen: %s
log:
  level: warn
demonstrator:
  listen: localhost:%d
spine:
  listen: localhost:%d
  ldap:
    listen: localhost:%d
    ldaps_listen: localhost:%d
registry:
  systems:
    - asid: "200000000359"
      name: Example consumer
      ods: Y12345
      party_key: Y12345-0000001
      fqdn: consumer.sspemu.localhost
      sends: [foundations, appointments]
    - asid: "918999198993"
      name: GP Connect demonstrator
      ods: A20047
      party_key: A20047-0000002
      fqdn: localhost
      endpoint: https://localhost:%d/A20047/STU3/1/gpconnect
      cpa_id: S20001A000002
      receives: [foundations, appointments]
    - asid: "918999199177"
      name: Chapel Allerton Medical Centre
      ods: B82617
      party_key: B82617-0000003
      fqdn: localhost
      endpoint: https://localhost:%d/B82617/STU3/1/gpconnect
      cpa_id: S20001A000003
      receives: [foundations, appointments]
  agreements:
    - from: "200000000359"
      to: "918999198993"
      interactions: [foundations, appointments]
    - from: "200000000359"
      to: "918999199177"
      interactions: [foundations, appointments]
`

// openIdle opens n TLS connections to the SSP with the consumer's
// certificate, sends one metadata read through the SSP to the practice on
// each, reads the answer and leaves the connection open and idle, as a
// keep-alive client does between calls. 64 are opened at a time.
func (st *stage) openIdle(ctx context.Context, s *sspInstance, n int) ([]net.Conn, error) {
	tok, err := st.token(ctx, s.config, readMetadata)
	if err != nil {
		return nil, err
	}
	h := gpHeaders(readMetadata)
	h.Set("Authorization", "Bearer "+tok)
	var (
		mu    sync.Mutex
		conns []net.Conn
		first error
	)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := idleCall(ctx, s.addr, st.consumerTLS, s.endpoint+"/metadata", h)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	if first != nil {
		return conns, fmt.Errorf("idle connections: %d of %d opened; first failure: %w", len(conns), n, first)
	}
	return conns, ctx.Err()
}

// idleCall makes one call on a new TLS connection and returns the
// connection, its answer read to the end.
func idleCall(ctx context.Context, addr string, cfg *tls.Config, target string, h http.Header) (net.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/"+target, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	req.URL.Opaque = "/" + target
	req.Header = h.Clone()
	req.Header.Set("Ssp-TraceID", uuid.NewString())
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		c.Close()
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get(proxy.ReasonHeader))
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// runtimeMem is the Go runtime's account of the process's memory, from
// the admin listener's Prometheus metrics: what the resident memory is
// made of.
func runtimeMem(ctx context.Context, admin string) string {
	var b strings.Builder
	if err := get(ctx, "http://"+admin+"/metrics", &b); err != nil {
		return "runtime figures unavailable: " + err.Error()
	}
	v := map[string]float64{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			v[name] = f
		}
	}
	m := func(k string) float64 { return v[k] / (1 << 20) }
	return fmt.Sprintf("Go heap in use %.1f MiB (idle, not returned to the OS %.1f), stacks %.1f MiB, runtime other %.1f MiB, goroutines %.0f, GC cycles %.0f",
		m("go_memstats_heap_inuse_bytes"), m("go_memstats_heap_idle_bytes")-m("go_memstats_heap_released_bytes"),
		m("go_memstats_stack_inuse_bytes"), m("go_memstats_other_sys_bytes")+m("go_memstats_mspan_inuse_bytes")+m("go_memstats_gc_sys_bytes"),
		v["go_goroutines"], v["go_gc_duration_seconds_count"])
}
