package admin

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"sspemu/audit"
	"sspemu/gpconnect"
	"sspemu/proxy"
)

// Metrics is what the proxy and the audit writer are handed.
var (
	_ proxy.Metrics  = (*Metrics)(nil)
	_ audit.Observer = (*Metrics)(nil)
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fetch gets /metrics through the admin handler, as Prometheus would.
func fetch(h http.Handler) (string, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("get /metrics: status %d, body %s", rec.Code, rec.Body)
	}
	return rec.Body.String(), nil
}

func scrape(t testing.TB, m *Metrics) string {
	t.Helper()
	body, err := fetch(New(Options{Metrics: m.Handler()}).Handler())
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// sspLines keeps the ssp_* families only: the Go and process collectors'
// values change from run to run.
func sspLines(body string) string {
	var b strings.Builder
	for line := range strings.Lines(body) {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if strings.HasPrefix(name, "ssp_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// sum adds up the samples of one series name (all label sets).
func sum(t testing.TB, body, name string) float64 {
	t.Helper()
	var total float64
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		total += v
	}
	return total
}

func TestMetricsGolden(t *testing.T) {
	m := NewMetrics("1.2.3-test")
	// A fixed sequence touching every family, every label fallback and the
	// +Inf buckets. Durations are exact binary fractions so sums print
	// the same everywhere.
	m.Request(gpconnect.ReadMetadata, "forwarded", "", 0.015625)
	m.Request(gpconnect.ReadMetadata, "forwarded", "", 0.03125)
	m.Request(gpconnect.ReadPatient, "refused", "jwt", 0.000244140625)
	m.Request("", "refused", "ssp-headers", 0.000244140625)
	m.Request("urn:nhs:names:services:gpconnect:fhir:rest:read:evil-1", "refused", "agreement", 0.0009765625)
	m.Request(gpconnect.SearchSlot, "answered", "", 0.0001220703125)
	m.Request(gpconnect.CreateAppointment, "error", "upstream", 32)
	m.Request(gpconnect.ReadPatient, "", "", 0.5)
	m.Request(gpconnect.ReadPatient, "teapot", "made-up-rule", 0.5)
	m.Upstream(0.015625)
	m.Upstream(31)
	m.Fsync(0.0001220703125, 1)
	m.Fsync(0.001953125, 7)
	m.Fsync(2, 5000)
	m.Reload("ok")
	m.Reload("failed")
	m.Reload("")
	m.TLSHandshakeFailure("no-certificate")
	m.TLSHandshakeFailure("no-certificate")
	m.TLSHandshakeFailure("unknown-ca")
	m.TLSHandshakeFailure("made-up-reason") // counts as other

	got := sspLines(scrape(t, m))
	got = strings.ReplaceAll(got, `goversion="`+runtime.Version()+`"`, `goversion="GOVERSION"`)

	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./admin -run TestMetricsGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (rerun with -update if the change is intended)\n--- got\n%s", path, got)
	}
}

// TestMetricsStartAtZero checks what a fresh process exposes: the reload
// results at 0 and build info, but no request series yet.
func TestMetricsStartAtZero(t *testing.T) {
	body := sspLines(scrape(t, NewMetrics("dev")))
	for _, want := range []string{
		`ssp_registry_reloads_total{result="ok"} 0`,
		`ssp_registry_reloads_total{result="failed"} 0`,
		`ssp_build_info{goversion="` + runtime.Version() + `",version="dev"} 1`,
		`ssp_upstream_duration_seconds_count 0`,
		`ssp_audit_fsync_seconds_count 0`,
		`ssp_audit_batch_records_count 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("fresh /metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "ssp_requests_total{") {
		t.Errorf("fresh /metrics has request series before any request:\n%s", body)
	}
}

var labelRE = regexp.MustCompile(`(interaction|outcome|rule)="((?:[^"\\]|\\.)*)"`)

// TestMetricsUntrustedLabels sends hostile Ssp-InteractionID values (and
// outcomes and rules a buggy caller might pass) and checks that none of them
// becomes a label value or a new series.
func TestMetricsUntrustedLabels(t *testing.T) {
	allowed := map[string][]string{
		"interaction": {"none", "unknown"},
		"outcome":     {"forwarded", "refused", "answered", "error", "other"},
		"rule":        append([]string{"none", "other"}, ruleNames()...),
	}
	for _, in := range gpconnect.Interactions() {
		allowed["interaction"] = append(allowed["interaction"], in.ID)
	}

	hostile := []string{
		gpconnect.ReadMetadata + " ",
		" " + gpconnect.ReadMetadata,
		strings.ToUpper(gpconnect.ReadMetadata),
		gpconnect.ReadMetadata + "\x00",
		gpconnect.URNPrefix,
		"urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-2",
		`x"} 1` + "\nssp_requests_total{interaction=\"injected",
		"\xff\xfe not UTF-8",
		strings.Repeat("A", 64<<10),
		"unknown ", "None", "other",
	}
	for i := range 500 {
		hostile = append(hostile, fmt.Sprintf("urn:attacker:%d", i))
	}

	m := NewMetrics("dev")
	for _, h := range hostile {
		m.Request(h, "refused", "sender", 0.001)
		m.Request(gpconnect.ReadPatient, gpconnect.Decision(h), gpconnect.Rule(h), 0.001) // outcome and rule too
	}
	body := scrape(t, m)

	var series int
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, "ssp_requests_total{") {
			continue
		}
		series++
		for _, sm := range labelRE.FindAllStringSubmatch(line, -1) {
			if !slices.Contains(allowed[sm[1]], sm[2]) {
				t.Errorf("label %s=%q is not one of the bounded values (line %q)", sm[1], sm[2], line)
			}
		}
	}
	// unknown/refused/sender and ReadPatient/other/other.
	if series != 2 {
		t.Errorf("%d ssp_requests_total series after %d hostile values, want 2:\n%s", series, len(hostile), sspLines(body))
	}
	if got, want := sum(t, body, "ssp_requests_total"), float64(2*len(hostile)); got != want {
		t.Errorf("ssp_requests_total sums to %v, want %v", got, want)
	}
	for _, h := range []string{"urn:attacker:", "injected", "AAAAAAAA", "metadata-2"} {
		if strings.Contains(body, h) {
			t.Errorf("/metrics contains attacker text %q", h)
		}
	}
}

func TestMetricsConcurrent(t *testing.T) {
	m := NewMetrics("dev")
	ids := []string{gpconnect.ReadMetadata, gpconnect.SearchSlot, "", "urn:attacker"}
	outcomes := append(gpconnect.Decisions(), "bogus")
	rules := gpconnect.Rules()
	const workers, each = 8, 300

	var wg sync.WaitGroup
	h := New(Options{Metrics: m.Handler()}).Handler()
	stop := make(chan struct{})
	scraped := make(chan int, 1)
	go func() { // scrape while observations happen, as Prometheus would
		n := 0
		for {
			select {
			case <-stop:
				scraped <- n
				return
			default:
				if _, err := fetch(h); err != nil {
					t.Error(err)
				}
				n++
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.Request(ids[(w+i)%len(ids)], outcomes[i%len(outcomes)], rules[i%len(rules)], 0.001)
				m.Upstream(0.01)
				m.Fsync(0.0005, i%8+1) // audit calls this from two chains at once
				if i%100 == 0 {
					m.Reload([]string{"ok", "failed"}[w%2])
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if n := <-scraped; n == 0 {
		t.Error("no scrape ran during the observations")
	}

	body := scrape(t, m)
	n := float64(workers * each)
	for name, want := range map[string]float64{
		"ssp_requests_total":                  n,
		"ssp_request_duration_seconds_count":  n,
		"ssp_upstream_duration_seconds_count": n,
		"ssp_audit_fsync_seconds_count":       n,
		"ssp_audit_batch_records_count":       n,
		"ssp_registry_reloads_total":          workers * (each / 100),
	} {
		if got := sum(t, body, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// FuzzRequestLabels feeds arbitrary header-derived strings to Request: it
// must neither panic (the client library panics on invalid UTF-8 label
// values) nor let the input through as a label value.
func FuzzRequestLabels(f *testing.F) {
	f.Add(gpconnect.ReadMetadata, "forwarded", "")
	f.Add("", "refused", "jwt")
	f.Add("\xff", "\xfe", "\x00")
	m := NewMetrics("fuzz")
	f.Fuzz(func(t *testing.T, interaction, outcome, rule string) {
		m.Request(interaction, gpconnect.Decision(outcome), gpconnect.Rule(rule), 0.001)
		l := m.interactionLabel(interaction)
		if _, known := gpconnect.Lookup(interaction); known {
			if l != interaction {
				t.Fatalf("catalogue ID %q labelled %q", interaction, l)
			}
		} else if l != labelNone && l != labelUnknown {
			t.Fatalf("interaction %q labelled %q", interaction, l)
		}
		r := m.ruleLabel(gpconnect.Rule(rule))
		if r != labelNone && r != labelOther && !slices.Contains(ruleNames(), r) {
			t.Fatalf("rule %q labelled %q", rule, r)
		}
		if !utf8.ValidString(l) || !utf8.ValidString(r) {
			t.Fatalf("labels %q, %q not UTF-8", l, r)
		}
	})
}

func BenchmarkRequest(b *testing.B) {
	for _, bc := range []struct {
		name, interaction string
		outcome           gpconnect.Decision
		rule              gpconnect.Rule
	}{
		{"forwarded", gpconnect.ReadPatient, "forwarded", ""},
		{"refused", gpconnect.SearchSlot, "refused", "agreement"},
		{"unknown", "urn:attacker:" + strings.Repeat("x", 200), "refused", "sender"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMetrics("bench")
			b.ReportAllocs()
			for b.Loop() {
				m.Request(bc.interaction, bc.outcome, bc.rule, 0.0123)
			}
		})
	}
}

// TestSum guards the helper the other tests rely on.
func TestSum(t *testing.T) {
	body := "ssp_a_total{x=\"1\"} 2\nssp_a_total{x=\"2\"} 3\nssp_a_total_more 100\nssp_a 7\n"
	if got := sum(t, body, "ssp_a_total"); got != 5 {
		t.Errorf("sum = %v, want 5", got)
	}
	if got := sspLines("# HELP go_x y\ngo_x 1\n# TYPE ssp_a counter\nssp_a 7\n"); got != "# TYPE ssp_a counter\nssp_a 7\n" {
		t.Error("sspLines kept a non-ssp line or dropped an ssp one")
	}
}

// ruleNames is the vocabulary's rules as label values.
func ruleNames() []string {
	var out []string
	for _, r := range gpconnect.Rules() {
		out = append(out, string(r))
	}
	return out
}

// TestMetricsEveryRuleHasItsLabel proves the rule label set is the
// vocabulary's: every gpconnect.Rule is known to the metrics from the start
// and a request it refused is counted under its own name, never as
// "other" (the fate of a rule missing from a hand-kept list), and every
// decision likewise under its own outcome.
func TestMetricsEveryRuleHasItsLabel(t *testing.T) {
	m := NewMetrics("dev")
	for _, r := range gpconnect.Rules() {
		if got := m.ruleLabel(r); got != string(r) {
			t.Errorf("rule %q has label %q, want its own name", r, got)
		}
		m.Request(gpconnect.ReadPatient, gpconnect.DecisionRefused, r, 0.001)
	}
	for _, d := range gpconnect.Decisions() {
		m.Request(gpconnect.ReadMetadata, d, "", 0.001)
	}
	body := scrape(t, m)
	for _, r := range gpconnect.Rules() {
		want := fmt.Sprintf(`ssp_requests_total{interaction=%q,outcome="refused",rule=%q} 1`, gpconnect.ReadPatient, r)
		if !strings.Contains(body, want+"\n") {
			t.Errorf("rule %q not counted under its own name: no line %s in\n%s", r, want, sspLines(body))
		}
	}
	for _, d := range gpconnect.Decisions() {
		if !strings.Contains(body, fmt.Sprintf(`ssp_request_duration_seconds_count{outcome=%q} `, d)) {
			t.Errorf("decision %q has no duration series of its own", d)
		}
	}
	if strings.Contains(body, `rule="other"`) || strings.Contains(body, `outcome="other"} 1`) {
		t.Errorf("a rule or decision of the vocabulary was counted as other:\n%s", sspLines(body))
	}
}
