package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
	"sspemu/pds"
)

// updateScreenshot rewrites the README's picture of the console.
var updateScreenshot = flag.Bool("update-screenshot", false, "rewrite docs/console.png from the browser test")

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browserWait bounds each wait for the page: generous, since the machine
// may be busy; a wait that runs out is a failure, never a skip.
const browserWait = 30 * time.Second

// ensureChromium installs Debian's chromium when it is missing, as .ci/run
// does, and fails the test, naming what to do, when it cannot.
func ensureChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	t.Logf("%s is missing: installing Debian's chromium with apt-get", chromiumPath)
	apt := func(args ...string) {
		cmd := exec.Command("apt-get", append([]string{"-o", "DPkg::Lock::Timeout=600"}, args...)...)
		if os.Geteuid() != 0 {
			cmd = exec.Command("sudo", append([]string{"-n", "apt-get", "-o", "DPkg::Lock::Timeout=600"}, args...)...)
		}
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the console's browser test needs Chromium at %s; apt-get %s failed: %v\n%s\ninstall it with: apt-get install chromium",
				chromiumPath, strings.Join(args, " "), err, out)
		}
	}
	apt("update")
	apt("install", "-y", "--no-install-recommends", "chromium")
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("apt-get installed chromium but %s is still missing: %v", chromiumPath, err)
	}
	return chromiumPath
}

// browserProblems collects what the page reports as wrong: console errors,
// uncaught exceptions, log entries at error level, and any request that
// leaves the admin origin.
type browserProblems struct {
	mu     sync.Mutex
	origin string
	list   []string
}

func (p *browserProblems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *browserProblems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.list
	p.list = nil
	return out
}

func (p *browserProblems) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.add("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		p.add("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			p.add("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		u := ev.Request.URL
		if !strings.HasPrefix(u, p.origin+"/") && !strings.HasPrefix(u, "data:") {
			p.add("request outside the admin listener: %s", u)
		}
	}
}

// consoleStack is a whole sspemu, as `go run .` starts it, with a consumer
// that calls it over real mutual TLS.
type consoleStack struct {
	st     *stack
	admin  string // http://127.0.0.1:port
	ssp    string // https://127.0.0.1:port
	root   string // the demonstrator's service root
	pki    string
	client *http.Client
}

func startConsoleStack(t *testing.T) *consoleStack {
	t.Helper()
	state := t.TempDir()
	demoPort := freeLoopbackPort(t)
	file := writeCrashConfig(t, state, demoPort, audit.SyncBatch)
	// The Spine services too, on free ports, for the consumer's PDS call.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	off := "spine:\n    enabled: false\n"
	if !bytes.Contains(data, []byte(off)) {
		t.Fatalf("the test config has no %q to replace:\n%s", off, data)
	}
	data = bytes.Replace(data, []byte(off), []byte("spine:\n    listen: 127.0.0.1:0\n    ldap:\n        listen: 127.0.0.1:0\n        ldaps_listen: 127.0.0.1:0\n"), 1)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, cfg := startTestStack(t, file)
	cs := &consoleStack{
		st:    st,
		admin: "http://" + st.addrs["admin"],
		ssp:   "https://" + st.addrs["ssp"],
		root:  fmt.Sprintf("https://localhost:%d/A20047/STU3/1/gpconnect", demoPort),
		pki:   cfg.PKIDir(),
	}
	cert, err := certs.LoadKeyPair(filepath.Join(cs.pki, certs.ConsumerFile), filepath.Join(cs.pki, certs.ConsumerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: cs.caPool(t), MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	cs.client = &http.Client{Transport: tr, Timeout: browserWait}
	return cs
}

func (cs *consoleStack) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool, err := certs.LoadCertPool(filepath.Join(cs.pki, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// call makes one GP Connect call through the SSP; edit changes the request
// before it goes. It returns the trace ID and the answer.
func (cs *consoleStack) call(t *testing.T, interaction, path string, edit func(*http.Request)) (string, *http.Response) {
	t.Helper()
	in, ok := gpconnect.Lookup(interaction)
	if !ok {
		t.Fatalf("no interaction %s", interaction)
	}
	req, err := http.NewRequest(in.Method, cs.ssp+"/"+cs.root+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	trace := uuid.NewString()
	req.Header.Set("Ssp-TraceID", trace)
	req.Header.Set("Ssp-From", crashFrom)
	req.Header.Set("Ssp-To", crashTo)
	req.Header.Set("Ssp-InteractionID", in.ID)
	req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, cs.root, time.Now()).Encode())
	req.Header.Set("Accept", gpconnect.MIMEJSON)
	if edit != nil {
		edit(req)
	}
	resp, err := cs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return trace, resp
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// whole stack over TLS: one browser for the package run, one page, the
// subtests in order.
func TestConsoleInBrowser(t *testing.T) {
	chromium := ensureChromium(t)
	cs := startConsoleStack(t)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1080),
	)
	t.Cleanup(cancelAlloc)
	problems := &browserProblems{origin: cs.admin}
	ctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(problems.listen))
	t.Cleanup(cancelTab)
	began := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Chromium started in %v", time.Since(began).Round(time.Millisecond))

	b := &browser{ctx: ctx}
	noProblems := func(t *testing.T) {
		t.Helper()
		for _, p := range problems.take() {
			t.Error(p)
		}
	}
	row := func(trace string) chromedp.CSS { return chromedp.CSS(`#entries tr.entry[data-trace="` + trace + `"]`) }
	// detail is the selector of the open entry's detail, once it is this
	// trace's: the pane may still show the entry opened before.
	detail := func(t *testing.T, trace, inside string) chromedp.CSS {
		id := b.attr(t, row(trace), "data-id")
		return chromedp.CSS(`#detail [data-entry="` + id + `"] ` + inside)
	}

	t.Run("page loads with no console errors", func(t *testing.T) {
		b.do(t, chromedp.Navigate(cs.admin+"/console"),
			chromedp.WaitVisible(chromedp.CSS(`#entries`)),
			chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)))
		if n := evaluate[int](t, b, `document.querySelectorAll("#exposed").length`); n != 0 {
			t.Error("the page says the admin listener is exposed, but it is on loopback")
		}
		noProblems(t)
	})

	var okTrace string
	t.Run("a call made while the page is open appears", func(t *testing.T) {
		trace, resp := cs.call(t, gpconnect.ReadMetadata, "/metadata", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("metadata through the SSP: %d", resp.StatusCode)
		}
		okTrace = trace
		b.do(t, chromedp.WaitVisible(row(trace)))
		outcome, text := b.attr(t, row(trace), "data-outcome"), b.text(t, row(trace))
		if outcome != "forwarded" || !strings.Contains(text, "200") || !strings.Contains(text, crashFrom+" → "+crashTo) {
			t.Errorf("row of the forwarded call: outcome %q, text %q", outcome, text)
		}
		noProblems(t)
	})

	var refusedTrace, reason string
	t.Run("a refused call shows its rule, token and reason", func(t *testing.T) {
		const wrongTo = "918999198999"
		trace, resp := cs.call(t, gpconnect.ReadMetadata, "/metadata", func(r *http.Request) { r.Header.Set("Ssp-To", wrongTo) })
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("call to an unregistered Ssp-To: %d, want 403", resp.StatusCode)
		}
		refusedTrace, reason = trace, resp.Header.Get("Sspemu-Reason")
		b.do(t, chromedp.WaitVisible(row(trace)), chromedp.Click(row(trace)), chromedp.WaitVisible(detail(t, trace, `#why[data-rule]`)))
		why, rule := b.text(t, chromedp.CSS(`#why`)), b.attr(t, chromedp.CSS(`#why`), "data-rule")
		token := "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_" + wrongTo
		if rule != "receiver" || !strings.Contains(why, token) || reason == "" || !strings.Contains(why, reason) {
			t.Errorf("refusal box: rule %q, text %q; want rule receiver, token %s and reason %q", rule, why, token, reason)
		}
		noProblems(t)
	})

	t.Run("the journey lists the rules in order", func(t *testing.T) {
		b.do(t, chromedp.WaitVisible(chromedp.CSS(`#sequence .step[data-rule="receiver"][data-verdict="failed"]`)))
		steps := evaluate[[]map[string]string](t, b,
			`[...document.querySelectorAll("#sequence .step")].map(s => ({rule: s.dataset.rule, verdict: s.dataset.verdict}))`)
		want := []string{"tls", "method", "target", "ssp-headers", "cert-asid", "sender", "receiver", "endpoint",
			"agreement", "jwt", "interaction-route", "audit", "upstream"}
		var got []string
		verdicts := map[string]string{}
		for _, s := range steps {
			got = append(got, s["rule"])
			verdicts[s["rule"]] = s["verdict"]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("rules on the page:\n got %v\nwant %v", got, want)
		}
		for i, r := range want {
			v := "passed"
			switch {
			case r == "receiver":
				v = "failed"
			case i > slices.Index(want, "receiver") && r != "audit":
				v = "not run"
			}
			if verdicts[r] != v {
				t.Errorf("rule %s: verdict %q, want %q", r, verdicts[r], v)
			}
		}
		if tok := b.text(t, chromedp.CSS(`#sequence .step[data-verdict="failed"] .token`)); !strings.HasPrefix(tok, "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_") {
			t.Errorf("the failing step's token: %q", tok)
		}
		noProblems(t)
	})

	t.Run("a bad token shows a verdict per claim", func(t *testing.T) {
		in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
		spec := gpconnect.DefaultTokenSpec(in, cs.root, time.Now())
		spec.ReasonForRequest = "secondaryuses"
		spec.Scope = gpconnect.ScopePatientRead
		trace, resp := cs.call(t, gpconnect.ReadMetadata, "/metadata", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+spec.Encode())
		})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad token: %d, want 400", resp.StatusCode)
		}
		b.do(t, chromedp.WaitVisible(row(trace)), chromedp.Click(row(trace)),
			chromedp.WaitVisible(detail(t, trace, `#token tr[data-claim="reason_for_request"]`)))
		claims := evaluate[[]map[string]string](t, b,
			`[...document.querySelectorAll("#token tr[data-claim]")].map(r => ({claim: r.dataset.claim, verdict: r.dataset.verdict}))`)
		got := map[string]string{}
		for _, c := range claims {
			got[c["claim"]] = c["verdict"]
		}
		for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "reason_for_request", "requested_scope",
			"requesting_device", "requesting_organization", "requesting_practitioner"} {
			want := "passed"
			if name == "reason_for_request" || name == "requested_scope" {
				want = "failed"
			}
			if got[name] != want {
				t.Errorf("claim %s: verdict %q, want %q", name, got[name], want)
			}
		}
		// Every verdict is inside the detail pane, not cut off beside it.
		if out := evaluate[int](t, b, `(() => { const pane = document.getElementById("detail").getBoundingClientRect();
			return [...document.querySelectorAll("#token tr[data-claim] td:last-child")].filter(td => td.getBoundingClientRect().right > pane.right + 1).length })()`); out != 0 {
			t.Errorf("%d claim verdicts lie outside the detail pane", out)
		}
		if strings.Contains(b.text(t, chromedp.CSS(`#detail`)), spec.Encode()) {
			t.Error("the page shows the raw token")
		}
		noProblems(t)
	})

	t.Run("a PDS call appears and opens", func(t *testing.T) {
		id := uuid.NewString()
		req, err := http.NewRequest(http.MethodGet, "https://"+cs.st.addrs["spine"]+pds.BasePath+"/Patient/"+pds.TestSuperseded, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", id)
		resp, err := cs.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PDS read: %d", resp.StatusCode)
		}
		b.do(t, chromedp.WaitVisible(row(id)), chromedp.Click(row(id)), chromedp.WaitVisible(detail(t, id, `*`)))
		if kind := b.attr(t, row(id), "data-outcome"); kind != "pds" {
			t.Errorf("the PDS call's row has outcome %q, want pds", kind)
		}
		noProblems(t)
	})

	t.Run("a handshake without a certificate appears", func(t *testing.T) {
		conn, err := tls.Dial("tcp", cs.st.addrs["ssp"], &tls.Config{RootCAs: cs.caPool(t), ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err == nil {
			// TLS 1.2: the server's alert comes after the client's flight.
			conn.SetReadDeadline(time.Now().Add(browserWait))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Fatal("the SSP completed a handshake without a client certificate")
		}
		sel := chromedp.CSS(`#entries tr.entry[data-outcome="tls"]`)
		b.do(t, chromedp.WaitVisible(sel), chromedp.Click(sel), chromedp.WaitVisible(chromedp.CSS(`#why.tls`)))
		if why := b.text(t, chromedp.CSS(`#why`)); !strings.Contains(why, "no-certificate") || !strings.Contains(why, "client certificate") {
			t.Errorf("handshake refusal box: %q", why)
		}
		// The same refusal is listed by the admin API and counted.
		resp, err := http.Get(cs.admin + "/api/transactions?outcome=tls")
		if err != nil {
			t.Fatal(err)
		}
		var listed []map[string]any
		json.NewDecoder(resp.Body).Decode(&listed)
		resp.Body.Close()
		if len(listed) != 1 || listed[0]["decision"] != "tls" || listed[0]["reason"] != "no-certificate" {
			t.Errorf("/api/transactions?outcome=tls = %v, want the one refusal", listed)
		}
		resp, err = http.Get(cs.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `ssp_tls_handshake_failures_total{reason="no-certificate"} 1`) {
			t.Errorf("/metrics does not count the refused handshake:\n%s", grepLines(string(body), "ssp_tls_handshake"))
		}
		noProblems(t)
	})

	t.Run("filters apply without a reload", func(t *testing.T) {
		evaluate[bool](t, b, `window.sspemuMarker = true`)
		b.do(t, chromedp.SetValue(chromedp.CSS(`#f-outcome`), "refused"))
		evaluate[bool](t, b, `document.getElementById("f-outcome").dispatchEvent(new Event("change", {bubbles: true}))`)
		outcomes := evaluate[[]string](t, b, `[...document.querySelectorAll("#entries tr.entry")].map(r => r.dataset.outcome)`)
		if len(outcomes) != 2 || slices.ContainsFunc(outcomes, func(o string) bool { return o != "refused" }) {
			t.Errorf("rows with outcome refused shown: %v, want the two refusals", outcomes)
		}
		b.do(t, chromedp.SetValue(chromedp.CSS(`#f-outcome`), ""), chromedp.SendKeys(chromedp.CSS(`#f-trace`), refusedTrace[:13]))
		traces := evaluate[[]string](t, b, `[...document.querySelectorAll("#entries tr.entry")].map(r => r.dataset.trace)`)
		if !slices.Equal(traces, []string{refusedTrace}) {
			t.Errorf("rows for trace filter %s: %v", refusedTrace[:13], traces)
		}
		if !evaluate[bool](t, b, `window.sspemuMarker === true`) {
			t.Error("the page reloaded when a filter changed")
		}
		b.do(t, chromedp.Click(chromedp.CSS(`#filters button[type="reset"]`)), chromedp.WaitVisible(row(okTrace)))
		noProblems(t)
	})

	t.Run("screenshot", func(t *testing.T) {
		b.do(t, chromedp.Click(row(refusedTrace)), chromedp.WaitVisible(chromedp.CSS(`#why[data-rule="receiver"]`)))
		png := runIn(t, b, chromedp.CaptureScreenshot())
		if len(png) < 1000 {
			t.Fatalf("screenshot of %d bytes", len(png))
		}
		if *updateScreenshot {
			if err := os.MkdirAll("docs", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("docs", "console.png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Log("wrote docs/console.png")
		}
		noProblems(t)
	})
}

// browser is the test's one tab; every step is bounded by browserWait.
type browser struct{ ctx context.Context }

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) text(t *testing.T, sel chromedp.CSS) string {
	t.Helper()
	return runIn(t, b, chromedp.Text(sel))
}

func (b *browser) attr(t *testing.T, sel chromedp.CSS, name string) string {
	t.Helper()
	return runIn(t, b, chromedp.AttributeValue(sel, name)).Value
}

func runIn[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func evaluate[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	return runIn(t, b, chromedp.Evaluate[T](expr))
}

func grepLines(s, substr string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}

// TestConsoleStuckPageDoesNotSlowTheSSP keeps a console stream open that
// reads nothing, with a tiny receive window, and makes calls through the
// whole stack: every call is answered (the client's timeout would fail the
// test otherwise), because the SSP only offers its journeys to the console
// and never waits for a page. Whether this many entries fill the kernel's
// buffers depends on the kernel; the console package's
// TestStuckPageNeverBlocksTheSSP forces them full.
func TestConsoleStuckPageDoesNotSlowTheSSP(t *testing.T) {
	cs := startConsoleStack(t)
	d := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		var serr error
		raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		return serr
	}}
	conn, err := d.Dial("tcp", cs.st.addrs["admin"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /console/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(browserWait))
	if _, err := conn.Read(make([]byte, 64)); err != nil { // the stream is open
		t.Fatal(err)
	}
	for i := range 200 {
		_, resp := cs.call(t, gpconnect.ReadMetadata, "/metadata", func(r *http.Request) {
			r.Header.Set("Ssp-To", "918999198999") // refused: the SSP's own path, fastest
		})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
}
