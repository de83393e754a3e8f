package proxy

import (
	"context"
	"net/http"
	"strings"

	"sspemu/gpconnect"
)

// ReasonHeader carries the plain-language reason of every refusal.
const ReasonHeader = "Sspemu-Reason"

// refuseSSP answers with the SSP's own body (ssp-behaviour §4): the token is
// both display and diagnostics, byte for byte.
func (s *Server) refuseSSP(w http.ResponseWriter, r *http.Request, rule string, status int, token, reason string) {
	sc := scopeFrom(r.Context())
	sc.decision, sc.rule, sc.status, sc.sspToken, sc.reason = "refused", rule, status, token, reason
	if !s.record(w, r, sc) {
		return
	}
	setReason(w.Header(), reason)
	gpconnect.WriteOutcome(w, sc.format, status, gpconnect.SSPOutcome(status, token))
}

// refuseProvider answers as a GP Connect provider would (ssp-behaviour §7),
// for the checks the real path leaves to the provider; the diagnostics say
// what to change.
func (s *Server) refuseProvider(w http.ResponseWriter, r *http.Request, rule string, status int, code, reason string) {
	sc := scopeFrom(r.Context())
	sc.decision, sc.rule, sc.status, sc.reason = "refused", rule, status, reason
	if !s.record(w, r, sc) {
		return
	}
	setReason(w.Header(), reason)
	gpconnect.WriteOutcome(w, sc.format, status, gpconnect.ProviderOutcome(status, code, reason))
}

// record makes the audit record durable before anything is answered or
// forwarded. When it cannot, the request is refused with 503 and nothing
// goes on (fail closed).
func (s *Server) record(w http.ResponseWriter, r *http.Request, sc *scope) bool {
	// A consumer that has stopped sending (its connection read ended, which
	// cancels the request's context) still gets its decision recorded: the
	// record is evidence whether or not anyone reads the answer.
	_, err := s.audit.Append(context.WithoutCancel(r.Context()), s.auditRecord(r, sc))
	if err == nil {
		return true
	}
	s.log.Error("audit record not written: refusing the request", "trace_id", sc.hdr.TraceID, "err", err)
	sc.decision, sc.rule, sc.status, sc.cleared = "error", "audit", http.StatusServiceUnavailable, false
	// Where the log lives and what the OS said are the operator's business
	// (they are in the log line above), not the consumer's.
	reason := "the SSP's audit log is unavailable, so it refuses the request (fail closed); it recovers by itself once the log can be written: try again shortly"
	setReason(w.Header(), reason)
	o := gpconnect.ProviderOutcome(http.StatusServiceUnavailable, gpconnect.CodeInternalServerError, reason)
	o.IssueCode = "transient"
	gpconnect.WriteOutcome(w, sc.format, http.StatusServiceUnavailable, o)
	return false
}

// setReason puts a reason in the Sspemu-Reason header; header values cannot
// hold line breaks or other control bytes.
func setReason(h http.Header, reason string) {
	h.Set(ReasonHeader, strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, reason))
}
