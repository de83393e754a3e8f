// Package admin is sspemu's plain-HTTP operations listener: health,
// readiness, the registry in force, recent transactions and the
// demonstrator's reset, kept off the SSP's own port.
package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/demonstrator"
	"sspemu/proxy"
)

// Options are what the admin listener reports on.
type Options struct {
	Registry     func() *agreements.Table
	Audit        *audit.Store
	Demonstrator *demonstrator.Demonstrator // nil when not running
	// Metrics serves /metrics; nil leaves the path unanswered.
	Metrics http.Handler
	// Ready reports whether the listeners are serving; nil means they are.
	Ready func() error
	// Console serves /console (the live console); nil leaves it unanswered.
	Console http.Handler
	// TLSRefusals returns the TLS handshakes the SSP refused, newest first,
	// listed by /api/transactions with outcome tls; nil lists none.
	TLSRefusals func() []proxy.Handshake
	// Faults serves /api/faults and /api/clock (faults.NewAPI); nil
	// leaves them unanswered.
	Faults http.Handler
}

// Admin is the admin API.
type Admin struct{ opt Options }

// New builds the admin API.
func New(opt Options) *Admin { return &Admin{opt: opt} }

// Handler routes the admin paths.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.HandleFunc("GET /api/registry", a.registry)
	mux.HandleFunc("GET /api/transactions", a.transactions)
	mux.HandleFunc("POST /api/demonstrator/reset", a.reset)
	if a.opt.Faults != nil {
		for _, p := range []string{"/api/faults", "/api/faults/{name}", "/api/clock"} {
			mux.Handle(p, a.opt.Faults)
		}
	}
	if a.opt.Metrics != nil {
		mux.Handle("GET /metrics", a.opt.Metrics)
	}
	if a.opt.Console != nil {
		mux.Handle("/console", a.opt.Console)
		mux.Handle("/console/", a.opt.Console)
	}
	return mux
}

func (a *Admin) ready(w http.ResponseWriter, _ *http.Request) {
	if a.opt.Ready != nil {
		if err := a.opt.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	if err := a.opt.Audit.Writable(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "audit log not writable: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *Admin) registry(w http.ResponseWriter, _ *http.Request) {
	t := a.opt.Registry()
	writeJSON(w, http.StatusOK, map[string]any{"systems": t.Systems(), "agreements": t.Agreements()})
}

func (a *Admin) transactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{
		TraceID:     q.Get("trace_id"),
		From:        q.Get("from"),
		To:          q.Get("to"),
		Interaction: q.Get("interaction"),
		Outcome:     q.Get("outcome"),
	}
	if o := f.Outcome; o != "" && o != OutcomeTLS && !slices.Contains(audit.Outcomes, o) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("outcome %q is not one of %s, %s", o, strings.Join(audit.Outcomes, ", "), OutcomeTLS)})
		return
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("since %q is not an RFC 3339 time, e.g. 2026-11-24T09:00:00Z", s)})
			return
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("limit %q is not a positive whole number", s)})
			return
		}
		f.Limit = n
	}
	ts, err := a.opt.Audit.Transactions(f)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	var refusals []proxy.Handshake
	if a.opt.TLSRefusals != nil {
		refusals = a.opt.TLSRefusals()
	}
	writeJSON(w, http.StatusOK, withTLSRefusals(ts, q, f, refusals))
}

// reset restores the seed data of every practice, or with ?practice=ODS of
// that one; an ODS code no practice has is 400, naming the ones served.
func (a *Admin) reset(w http.ResponseWriter, r *http.Request) {
	if a.opt.Demonstrator == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the demonstrator is not running (demonstrator.enabled: false)"})
		return
	}
	if ods, ok := r.URL.Query()["practice"]; ok {
		if len(ods) != 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "send practice=<ODS code> once"})
			return
		}
		if err := a.opt.Demonstrator.ResetPractice(ods[0]); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset", "practice": ods[0]})
		return
	}
	if err := a.opt.Demonstrator.Reset(); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
