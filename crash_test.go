package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
)

// The consumer and provider of the default registry, which the crash test
// copies from the embedded config.yaml.
const (
	crashFrom     = "200000000359"
	crashTo       = "918999198993"
	crashWrongTo  = "918999198994" // registered nowhere: refused with 403 (rule receiver)
	crashLoaders  = 16
	crashReadyMax = 60 * time.Second
	crashRoundMax = 15 * time.Second // a round kills at its threshold or after this, whichever is first
)

// TestCrash runs the built binary under concurrent load, kills it with
// SIGKILL at five moments and proves the audit promise of design.md: every
// request that received an answer has its audit record, the chains verify,
// and the store continues the same chains after each crash and after a
// clean stop. A lost record or a broken chain here is a product bug.
func TestCrash(t *testing.T) {
	bin := buildCrashBinary(t)
	state := t.TempDir()
	demoPort := freeLoopbackPort(t)
	// "" leaves audit.sync out: the default, interval, whose promise
	// against a kill is the same (the record is written before the request
	// goes on; only its fsync comes later).
	cfgs := map[string]string{}
	for _, mode := range []string{"", audit.SyncInterval, audit.SyncBatch, audit.SyncAlways} {
		cfgs[mode] = writeCrashConfig(t, state, demoPort, mode)
	}
	cfgFile := cfgs[""]
	auditDir := filepath.Join(state, "audit")
	target := "https://localhost:" + strconv.Itoa(demoPort) + "/A20047/STU3/1/gpconnect/metadata"

	// Each round restarts on the state the previous kill left, so every
	// round after the first also proves the store reopens a crashed chain.
	// The kill comes right after the first answer, in the thick of the
	// load, under the default (interval), interval named explicitly, group
	// commit and one fsync per record.
	rounds := []struct {
		killAfter int
		sync      string
	}{
		{1, ""},
		{60, audit.SyncInterval},
		{300, audit.SyncBatch},
		{150, audit.SyncAlways},
		{500, ""},
		{400, audit.SyncInterval},
	}
	answered := map[string]crashAnswer{} // every answered trace ID over all rounds
	for i, rc := range rounds {
		round, killAfter, cfg := i+1, rc.killAfter, cfgs[rc.sync]
		mode := rc.sync
		if mode == "" {
			mode = "left to the default"
		}
		t.Logf("round %d: audit.sync %s, kill after %d answered requests (or %s)", round, mode, killAfter, crashRoundMax)
		p := startSSP(t, bin, cfg)
		client := consumerClient(t, filepath.Join(state, "pki"))
		token := crashToken(t, bin, cfg)
		got, early := loadThenKill(t, p, client, "https://"+p.sspAddr+"/"+target, token, round, killAfter)
		client.CloseIdleConnections()
		checkLog(t, fmt.Sprintf("round %d", round), p)
		if len(early) > 0 {
			t.Errorf("round %d: %d requests failed before the kill (first: %v); stderr:\n%s", round, len(early), early[0], p.stderr())
		}
		if len(got) == 0 {
			t.Fatalf("round %d: no request was answered before the kill; stderr:\n%s", round, p.stderr())
		}
		checkStatuses(t, round, got)
		for id, a := range got {
			answered[id] = a
		}
		t.Logf("round %d: %d answered, %d answered so far; %s", round, len(got), len(answered), tornFiles(t, auditDir))
		checkAudited(t, fmt.Sprintf("after the kill of round %d", round), auditDir, answered)
		verifyChains(t, bin, auditDir)
		if t.Failed() {
			t.FailNow()
		}
	}

	// Continuity: a clean start on the crashed state, one more request and
	// a graceful stop leave one intact chain holding everything.
	p := startSSP(t, bin, cfgFile)
	client := consumerClient(t, filepath.Join(state, "pki"))
	token := crashToken(t, bin, cfgFile)
	last := uuid.NewString()
	status, body, err := sendCrashRequest(context.Background(), client, "https://"+p.sspAddr+"/"+target, token, last, true)
	client.CloseIdleConnections()
	if err != nil || status != http.StatusOK {
		t.Errorf("after the restart: request %s: status %d, err %v, body %.300s", last, status, err, body)
	} else {
		answered[last] = crashAnswer{Round: 0, Valid: true, Status: status}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if err := p.wait(30 * time.Second); err != nil {
		t.Errorf("serve after SIGTERM: %v; stderr:\n%s", err, p.stderr())
	}
	checkLog(t, "after the restart", p)
	checkAudited(t, "after the restart and a clean stop", auditDir, answered)
	verifyChains(t, bin, auditDir)
	txs, _ := readChain(t, auditDir, audit.TransactionChain)
	if tx, ok := txs[last]; !ok || tx.Status != http.StatusOK {
		t.Errorf("after a clean stop the transaction record of %s is %+v (found %v), want status 200", last, tx, ok)
	}
}

// crashAnswer is what the consumer saw for one trace ID.
type crashAnswer struct {
	Round  int // 0 for the request after the restart
	Valid  bool
	Status int
	Body   string // kept only for an unexpected status
}

// crashRecord is the part of an audit or transaction line the test reads.
type crashRecord struct {
	Seq      uint64 `json:"seq"`
	TraceID  string `json:"trace_id"`
	Decision string `json:"decision"`
	Rule     string `json:"rule"`
	Status   int    `json:"status"`
}

// buildCrashBinary builds sspemu from this package once for the test.
func buildCrashBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sspemu")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeLoopbackPort finds a port free on 127.0.0.1; another process may take
// it before the demonstrator does, a race the test accepts.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCrashConfig writes a config with every listener on loopback, the
// state in state, the audit sync mode ("": the default), small audit files (so the chains
// rotate during the load) and the embedded registry with the demonstrator's endpoint on demoPort.
func writeCrashConfig(t *testing.T, state string, demoPort int, sync string) string {
	t.Helper()
	var def map[string]any
	if err := yaml.Unmarshal(defaultConfig, &def); err != nil {
		t.Fatalf("embedded config.yaml: %v", err)
	}
	reg, ok := def["registry"].(map[string]any)
	if !ok {
		t.Fatal("embedded config.yaml has no registry: mapping")
	}
	systems, _ := reg["systems"].([]any)
	found := false
	for _, s := range systems {
		// Every practice's endpoint moves to demoPort, or check-config
		// refuses the practices whose endpoint is not their service root.
		if sys, ok := s.(map[string]any); ok {
			if ep, _ := sys["endpoint"].(string); strings.HasPrefix(ep, "https://localhost:9443/") {
				sys["endpoint"] = "https://localhost:" + strconv.Itoa(demoPort) + strings.TrimPrefix(ep, "https://localhost:9443")
			}
			found = found || sys["asid"] == crashTo
		}
	}
	if !found {
		t.Fatalf("embedded registry has no system with ASID %s", crashTo)
	}
	auditCfg := map[string]any{"max_file_bytes": 64 << 10}
	if sync != "" {
		auditCfg["sync"] = sync
	}
	cfg := map[string]any{
		"state_dir":    state,
		"ssp":          map[string]any{"listen": "127.0.0.1:0"},
		"admin":        map[string]any{"listen": "127.0.0.1:0"},
		"spine":        map[string]any{"enabled": false},
		"audit":        auditCfg,
		"demonstrator": map[string]any{"listen": "localhost:" + strconv.Itoa(demoPort)},
		"registry":     reg,
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// crashEnv is the environment without SSPEMU_* variables, which would
// override the test's config.
func crashEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SSPEMU_") })
}

// crashToken runs the binary's token command for the metadata interaction.
func crashToken(t *testing.T, bin, cfgFile string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "token", "--config", cfgFile, "--interaction", gpconnect.ReadMetadata)
	cmd.Env = crashEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sspemu token: %v\n%s", err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// sspProcess is one running `sspemu serve`.
type sspProcess struct {
	cmd     *exec.Cmd
	log     *readyWatcher
	sspAddr string
	done    chan struct{} // closed when the process has been waited for
	err     error         // cmd.Wait's answer, once done
}

// startSSP starts serve and waits for its ready line; t.Cleanup kills it if
// the test ends first.
func startSSP(t *testing.T, bin, cfgFile string) *sspProcess {
	t.Helper()
	w := &readyWatcher{ready: make(chan string, 1)}
	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	cmd.Env = crashEnv()
	cmd.Stdout = io.Discard
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p := &sspProcess{cmd: cmd, log: w, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	timer := time.NewTimer(crashReadyMax)
	defer timer.Stop()
	select {
	case line := <-w.ready:
		m := regexp.MustCompile(`\bssp_addr=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("ready line without ssp_addr: %s", line)
		}
		p.sspAddr = m[1]
	case <-p.done:
		t.Fatalf("serve exited before it was ready: %v; stderr:\n%s", p.err, w.String())
	case <-timer.C:
		t.Fatalf("serve not ready within %s; stderr:\n%s", crashReadyMax, w.String())
	}
	return p
}

func (p *sspProcess) stderr() string { return p.log.String() }

// wait waits for the process to end, at most d.
func (p *sspProcess) wait(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("still running after %s", d)
	}
}

// checkLog fails on an error or a panic in the operational log: under
// this load nothing should go wrong before the kill.
func checkLog(t *testing.T, when string, p *sspProcess) {
	t.Helper()
	for line := range strings.SplitSeq(p.stderr(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "panic:") || strings.Contains(line, "DATA RACE") {
			t.Errorf("%s: serve logged: %s", when, line)
		}
	}
}

// readyWatcher keeps the process's standard error and hands over the
// `sspemu ready` line once.
type readyWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	seen  bool
	ready chan string
}

func (w *readyWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.seen {
		for line := range strings.SplitSeq(w.buf.String(), "\n") {
			if strings.Contains(line, `msg="sspemu ready"`) {
				w.seen = true
				w.ready <- line
				break
			}
		}
	}
	return len(b), nil
}

func (w *readyWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// consumerClient is the default consumer of the generated dev PKI.
func consumerClient(t *testing.T, pki string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, certs.ConsumerFile), filepath.Join(pki, certs.ConsumerKeyFile))
	if err != nil {
		t.Fatalf("consumer certificate: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", certs.CAFile)
	}
	c := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: crashLoaders,
			ForceAttemptHTTP2:   false,
		},
		Timeout: 30 * time.Second,
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// sendCrashRequest sends one metadata read under trace; a request that is
// not valid names an unregistered Ssp-To, which the SSP refuses with 403.
// It returns once the status line is read (err nil), with as much of the
// body as arrived.
func sendCrashRequest(ctx context.Context, client *http.Client, url, token, trace string, valid bool) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	to := crashTo
	if !valid {
		to = crashWrongTo
	}
	req.Header.Set("Ssp-TraceID", trace)
	req.Header.Set("Ssp-From", crashFrom)
	req.Header.Set("Ssp-To", to)
	req.Header.Set("Ssp-InteractionID", gpconnect.ReadMetadata)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, string(body), nil
}

// loadThenKill drives crashLoaders goroutines against the SSP, SIGKILLs the
// process once killAfter requests are answered (or after crashRoundMax)
// while the load still runs, then stops the load and reaps the process. It
// returns every answered trace ID and the errors seen before the kill.
func loadThenKill(t *testing.T, p *sspProcess, client *http.Client, url, token string, round, killAfter int) (map[string]crashAnswer, []error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		answered = map[string]crashAnswer{}
		early    []error
		killed   atomic.Bool
		reached  = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
	)
	for g := range crashLoaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				valid := (g+i)%3 != 0
				trace := uuid.NewString()
				status, body, err := sendCrashRequest(ctx, client, url, token, trace, valid)
				if err != nil {
					if !killed.Load() {
						mu.Lock()
						early = append(early, fmt.Errorf("trace %s: %w", trace, err))
						mu.Unlock()
					}
					continue
				}
				a := crashAnswer{Round: round, Valid: valid, Status: status}
				if (valid && status != http.StatusOK) || (!valid && status != http.StatusForbidden) {
					a.Body = body
				}
				mu.Lock()
				answered[trace] = a
				n := len(answered)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() { close(reached) })
				}
			}
		}()
	}
	timer := time.NewTimer(crashRoundMax)
	defer timer.Stop()
	select {
	case <-reached:
	case <-timer.C:
	case <-p.done:
		t.Errorf("round %d: serve exited under load: %v", round, p.err)
	}
	killed.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("round %d: SIGKILL: %v", round, err)
	}
	cancel()
	wg.Wait()
	err := p.wait(30 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("round %d: serve after SIGKILL: %v", round, err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("round %d: serve ended with %v, want a death by SIGKILL", round, exit)
	}
	mu.Lock()
	defer mu.Unlock()
	return answered, early
}

// checkStatuses requires 200 for every valid request and 403 for every
// refused one: anything else (a 503 from a failed audit, a 502) is a fault.
func checkStatuses(t *testing.T, round int, got map[string]crashAnswer) {
	t.Helper()
	bad := 0
	for id, a := range got {
		if a.Body == "" {
			continue
		}
		if bad++; bad <= 5 {
			t.Errorf("round %d: trace %s (valid %v) answered %d: %.300s", round, id, a.Valid, a.Status, a.Body)
		}
	}
	if bad > 5 {
		t.Errorf("round %d: %d unexpected statuses in all", round, bad)
	}
}

// readChain reads every whole line of a chain's files by trace ID; a torn
// last line is left out, as Verify reports it as a note.
func readChain(t *testing.T, dir, chain string) (map[string]crashRecord, []string) {
	t.Helper()
	files, err := audit.ChainFiles(dir, chain)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]crashRecord{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = data[:bytes.LastIndexByte(data, '\n')+1]
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r crashRecord
			if err := json.Unmarshal(line, &r); err != nil {
				t.Errorf("%s line %d: %v", f, i+1, err)
				continue
			}
			if r.TraceID != "" {
				recs[r.TraceID] = r
			}
		}
	}
	return recs, files
}

// checkAudited proves that every answered trace ID has an audit record
// saying what the consumer saw, and that no transaction record stands
// without its audit record.
func checkAudited(t *testing.T, when, dir string, answered map[string]crashAnswer) {
	t.Helper()
	recs, files := readChain(t, dir, audit.AuditChain)
	var missing, wrong []string
	for id, a := range answered {
		r, ok := recs[id]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s (round %d, status %d)", id, a.Round, a.Status))
		case a.Status == http.StatusOK && r.Decision != "forwarded",
			a.Status == http.StatusForbidden && (r.Decision != "refused" || r.Rule != "receiver" || r.Status != http.StatusForbidden):
			wrong = append(wrong, fmt.Sprintf("%s: answered %d, audit seq %d says %s/%s/%d", id, a.Status, r.Seq, r.Decision, r.Rule, r.Status))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%s: %d of %d answered requests have no audit record in %d file(s) (%d records); first: %s",
			when, len(missing), len(answered), len(files), len(recs), strings.Join(missing[:min(len(missing), 10)], ", "))
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %d audit records disagree with the answer; first: %s", when, len(wrong), strings.Join(wrong[:min(len(wrong), 10)], "; "))
	}
	txs, _ := readChain(t, dir, audit.TransactionChain)
	orphans := 0
	for id := range txs {
		if _, ok := recs[id]; !ok {
			if orphans++; orphans <= 5 {
				t.Errorf("%s: transaction record of %s has no audit record", when, id)
			}
		}
	}
	t.Logf("%s: %d answered, %d audit records in %d file(s), %d transaction records", when, len(answered), len(recs), len(files), len(txs))
}

// verifyChains runs the binary's `audit verify` on each chain and requires
// it to report the chain intact.
func verifyChains(t *testing.T, bin, dir string) {
	t.Helper()
	for _, chain := range []string{audit.AuditChain, audit.TransactionChain} {
		files, err := audit.ChainFiles(dir, chain)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no %s files in %s", chain, dir)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, append([]string{"audit", "verify"}, files...)...)
		cmd.Env = crashEnv()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("audit verify of the %s chain (%d files): %v\n%s", chain, len(files), err, out)
			continue
		}
		t.Logf("audit verify %s: %s", chain, strings.TrimSpace(string(out)))
	}
}

// tornFiles names the .torn files a restart left beside the chains.
func tornFiles(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.torn"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		return "no torn tails cut so far"
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return "torn tails cut so far: " + strings.Join(m, ", ")
}
