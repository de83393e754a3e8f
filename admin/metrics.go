package admin

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sspemu/faults"
	"sspemu/gpconnect"
	"sspemu/proxy"
)

// The label values used when an observation does not carry a known value, so
// that no caller (and no request header behind it) can add a series.
const (
	labelNone    = "none"
	labelUnknown = "unknown"
	labelOther   = "other"
)

// latencyBuckets run from half a millisecond, where the SSP's own refusals
// sit, to 30 s, the default upstream timeout.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// fsyncBuckets run from 100 µs (a fast SSD) to 1 s (a disk in trouble).
var fsyncBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// Metrics is sspemu's Prometheus instrumentation on a registry of its own, so
// that tests and several servers in one process never share series. It
// satisfies proxy.Metrics and audit.Observer. Every label value is drawn from
// a fixed set, because the interaction ID comes from an untrusted request
// header and each distinct value would otherwise be a new series held in
// memory for ever.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	// duration is indexed like outcomes: resolved once so that the per
	// request path does no label hashing for the histogram.
	duration []prometheus.Observer
	upstream prometheus.Histogram
	fsync    prometheus.Histogram
	batch    prometheus.Histogram
	reloadOK prometheus.Counter
	reloadNo prometheus.Counter
	tlsFail  map[string]prometheus.Counter // by proxy.HandshakeReasons
	faults   *prometheus.CounterVec

	interactions map[string]string // known URN → itself; read only after NewMetrics
	// The outcome and rule label sets are the vocabulary's
	// (gpconnect.Decisions, gpconnect.Rules), derived rather than listed,
	// so a rule added there is counted under its own name, never "other".
	outcomes     map[gpconnect.Decision]int // known outcome → index into duration and outcomeNames
	outcomeNames []string                   // the decisions, then labelOther
	rules        map[gpconnect.Rule]string  // known rule → its label
}

// NewMetrics builds the instrumentation and its registry; version is the
// build's version, reported in ssp_build_info so a dashboard can tell which
// build produced a change in behaviour.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg:          prometheus.NewRegistry(),
		interactions: map[string]string{},
		outcomes:     map[gpconnect.Decision]int{},
		rules:        map[gpconnect.Rule]string{},
	}
	for _, in := range gpconnect.Interactions() {
		m.interactions[in.ID] = in.ID
	}
	for _, r := range gpconnect.Rules() {
		m.rules[r] = string(r)
	}

	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssp_requests_total",
		Help: "Requests the SSP finished, by interaction, outcome (forwarded, refused, answered, error) and the rule that decided a refusal or error (none when forwarded), so a consumer developer can see which check their calls fail.",
	}, []string{"interaction", "outcome", "rule"})

	durationVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ssp_request_duration_seconds",
		Help:    "Time from the request reaching the SSP to the last byte of the answer, by outcome, so the SSP's own overhead (refusals) can be told apart from the provider's time (forwarded).",
		Buckets: latencyBuckets,
	}, []string{"outcome"})
	for i, d := range gpconnect.Decisions() {
		m.outcomes[d] = i
		m.outcomeNames = append(m.outcomeNames, string(d))
	}
	m.outcomeNames = append(m.outcomeNames, labelOther)
	for _, o := range m.outcomeNames {
		m.duration = append(m.duration, durationVec.WithLabelValues(o))
	}

	m.upstream = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssp_upstream_duration_seconds",
		Help:    "Time the provider took on the forwarded leg, so a slow provider is not mistaken for a slow SSP.",
		Buckets: latencyBuckets,
	})
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssp_audit_fsync_seconds",
		Help:    "Time of each fsync of an audit or transaction log; every request waits for one before it is forwarded or refused, so this bounds the SSP's latency.",
		Buckets: fsyncBuckets,
	})
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssp_audit_batch_records",
		Help:    "Records made durable by each fsync, showing how well group commit shares one fsync among concurrent requests.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 … 4096
	})

	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssp_registry_reloads_total",
		Help: "Reloads of the registry of systems and agreements by result (ok, failed); a failed reload leaves the previous registry in force, so it must be seen.",
	}, []string{"result"})
	// Both results exist from the start, so a rate over failed is defined
	// before the first failure.
	m.reloadOK = reloads.WithLabelValues("ok")
	m.reloadNo = reloads.WithLabelValues("failed")

	handshakes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssp_tls_handshake_failures_total",
		Help: "TLS handshakes the SSP refused, by reason (no-certificate, unknown-ca, expired, revoked, protocol, cipher-suite, ...): these consumers never reach the chain and get only a TLS alert, so this is where the most common first mistake shows.",
	}, []string{"reason"})
	// Every reason exists from the start, at zero, so a rate is defined
	// before the first refusal; the set is fixed, so no client adds one.
	m.tlsFail = map[string]prometheus.Counter{}
	for _, r := range proxy.HandshakeReasons {
		m.tlsFail[r] = handshakes.WithLabelValues(r)
	}

	// The name label is a loaded rule's name: at most 64 characters of a
	// fixed alphabet, and only names an operator loaded ever act, so the
	// series stay as few as the rules.
	m.faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssp_faults_total",
		Help: "Fault rules that acted (sspemu fault injection), by rule name and where it acted (ssp, provider), so a CI run can check its faults happened.",
	}, []string{"name", "at"})

	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ssp_build_info",
		Help: "Always 1; its labels name the sspemu version and the Go version that built it, so a change in behaviour can be matched to a build.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)

	m.reg.MustRegister(
		m.requests, durationVec, m.upstream, m.fsync, m.batch, reloads, handshakes, m.faults, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text format, for the admin
// listener's GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts one finished request and its duration. interaction comes
// from the Ssp-InteractionID header: only catalogue IDs become label values,
// anything else is "unknown" and an empty one "none"; unknown outcomes and
// rules become "other" and an empty rule "none".
func (m *Metrics) Request(interaction string, outcome gpconnect.Decision, rule gpconnect.Rule, seconds float64) {
	o, ok := m.outcomes[outcome]
	if !ok {
		o = len(m.outcomeNames) - 1 // labelOther
	}
	m.requests.WithLabelValues(m.interactionLabel(interaction), m.outcomeNames[o], m.ruleLabel(rule)).Inc()
	m.duration[o].Observe(seconds)
}

// Upstream records the provider leg's duration of one forwarded request.
func (m *Metrics) Upstream(seconds float64) { m.upstream.Observe(seconds) }

// Fsync records one fsync of an audit chain and the records it made durable.
// It is safe from several goroutines at once.
func (m *Metrics) Fsync(seconds float64, records int) {
	m.fsync.Observe(seconds)
	m.batch.Observe(float64(records))
}

// Reload counts one registry reload. result is "ok" or "failed"; anything
// other than "ok" counts as failed, since a reload that did not say it
// succeeded did not put a new registry in force.
func (m *Metrics) Reload(result string) {
	if result == "ok" {
		m.reloadOK.Inc()
		return
	}
	m.reloadNo.Inc()
}

// TLSHandshakeFailure counts one refused TLS handshake; a reason outside
// proxy.HandshakeReasons counts as "other".
func (m *Metrics) TLSHandshakeFailure(reason string) {
	c, ok := m.tlsFail[reason]
	if !ok {
		c = m.tlsFail[proxy.HandshakeOther]
	}
	c.Inc()
}

// Fault counts one action of the fault rule name at at; it satisfies
// faults.Metrics.
func (m *Metrics) Fault(name string, at faults.At) {
	m.faults.WithLabelValues(name, string(at)).Inc()
}

// interactionLabel bounds the interaction label to the catalogue. The
// returned string is the map's own copy, never the caller's, so a label never
// keeps a request's header memory alive.
func (m *Metrics) interactionLabel(id string) string {
	if id == "" {
		return labelNone
	}
	if v, ok := m.interactions[id]; ok {
		return v
	}
	return labelUnknown
}

func (m *Metrics) ruleLabel(rule gpconnect.Rule) string {
	if rule == "" {
		return labelNone
	}
	if v, ok := m.rules[rule]; ok {
		return v
	}
	return labelOther
}
