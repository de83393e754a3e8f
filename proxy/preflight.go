// preflight.go answers the CORS preflight (OPTIONS) at the SSP itself.

package proxy

import (
	"net/http"
	"slices"
	"strings"

	"sspemu/gpconnect"
)

// preflight answers a CORS preflight itself (ssp-behaviour §1): 200 with the
// methods of the interactions on the target's path, under the header the NHS
// conformance suite reads (Access-Control-Request-Method) and the standard one.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut}
	if t, err := ParseTarget(r.RequestURI); err == nil {
		sc.target, sc.targetOK = t, true
		if m := pathMethods(sc, t); len(m) > 0 {
			methods = m
		}
	}
	list := strings.Join(methods, ", ")
	sc.decision, sc.status, sc.reason = gpconnect.DecisionAnswered, http.StatusOK, "CORS preflight answered by the SSP: "+list
	if !s.record(w, r, sc) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Request-Method", list)
	h.Set("Access-Control-Allow-Methods", list)
	h.Set("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, If-Match, Prefer, Ssp-From, Ssp-InteractionID, Ssp-To, Ssp-TraceID")
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// pathMethods finds the interactions whose path fits the target: below the
// registered service root of a provider when the target starts with one,
// else the longest tail of the path that is an interaction's path.
func pathMethods(sc *scope, t Target) []string {
	var rel []string
	for _, sys := range sc.table.Systems() {
		if sys.Endpoint != "" && strings.HasPrefix(t.Raw, sys.Endpoint) {
			rel = []string{strings.TrimPrefix("https://"+t.Host+t.Path, sys.Endpoint)}
			break
		}
	}
	if rel == nil {
		segs := strings.Split(t.Path, "/")
		for i := 1; i < len(segs); i++ {
			rel = append(rel, "/"+strings.Join(segs[i:], "/"))
		}
	}
	for _, p := range rel {
		var methods []string
		for _, in := range gpconnect.RoutesOfPath(p) {
			if !slices.Contains(methods, in.Method) {
				methods = append(methods, in.Method)
			}
		}
		if len(methods) > 0 {
			slices.Sort(methods)
			return methods
		}
	}
	return nil
}
