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
	if a.opt.Metrics != nil {
		mux.Handle("GET /metrics", a.opt.Metrics)
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
	if o := f.Outcome; o != "" && !slices.Contains(audit.Outcomes, o) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("outcome %q is not one of %s", o, strings.Join(audit.Outcomes, ", "))})
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
	if ts == nil {
		ts = []audit.Transaction{}
	}
	writeJSON(w, http.StatusOK, ts)
}

func (a *Admin) reset(w http.ResponseWriter, _ *http.Request) {
	if a.opt.Demonstrator == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the demonstrator is not running (demonstrator.enabled: false)"})
		return
	}
	a.opt.Demonstrator.Reset()
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
