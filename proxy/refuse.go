package proxy

import (
	"context"
	"net/http"

	"sspemu/gpconnect"
)

// ReasonHeader carries the plain-language reason of every refusal.
const ReasonHeader = gpconnect.ReasonHeader

// refuse records ref as the request's decision, makes the record durable,
// then answers it: the Sspemu-Reason header and the refusal rendered in its
// shape (the SSP's own, ssp-behaviour §4, or the provider's, §7) and the
// negotiated format. Every refusal of the chain goes through here.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ref *gpconnect.Refusal) {
	sc := scopeFrom(r.Context())
	sc.decision, sc.rule, sc.status, sc.reason = gpconnect.DecisionRefused, ref.Rule, ref.Status, ref.Reason
	if ref.Shape == gpconnect.ShapeSSP {
		sc.sspToken = ref.Token
	} else {
		sc.code = ref.Code
	}
	if ref.Allow != "" {
		w.Header().Set("Allow", ref.Allow)
	}
	if !s.record(w, r, sc) {
		return
	}
	gpconnect.SetReason(w.Header(), ref.Reason)
	ref.Write(w, sc.format)
}

// refusal is a refusal of rule in the provider's shape (400 BAD_REQUEST
// unless status says otherwise), for the checks the real path leaves to
// the provider; reason, its diagnostics, says what to change.
func refusal(rule gpconnect.Rule, status int, code, reason string) *gpconnect.Refusal {
	return &gpconnect.Refusal{Rule: rule, Status: status, Code: code, Reason: reason}
}

// record makes the audit record durable before anything is answered or
// forwarded. When it cannot, the request is refused with 503 and nothing
// goes on (fail closed).
func (s *Server) record(w http.ResponseWriter, r *http.Request, sc *scope) bool {
	// A consumer that has stopped sending (its connection read ended, which
	// cancels the request's context) still gets its decision recorded: the
	// record is evidence whether or not anyone reads the answer.
	seq, err := s.audit.Append(context.WithoutCancel(r.Context()), s.auditRecord(r, sc))
	if err == nil {
		sc.auditSeq = seq
		return true
	}
	s.log.Error("audit record not written: refusing the request", "trace_id", sc.hdr.TraceID, "err", err)
	ref := &gpconnect.Refusal{
		Rule: gpconnect.RuleAudit, Status: http.StatusServiceUnavailable,
		Code: gpconnect.CodeInternalServerError, IssueCode: "transient",
		// Where the log lives and what the OS said are the operator's
		// business (they are in the log line above), not the consumer's.
		Reason: "the SSP's audit log is unavailable, so it refuses the request (fail closed); it recovers by itself once the log can be written: try again shortly",
	}
	sc.decision, sc.rule, sc.status, sc.code, sc.cleared = gpconnect.DecisionError, ref.Rule, ref.Status, ref.Code, false
	gpconnect.SetReason(w.Header(), ref.Reason)
	ref.Write(w, sc.format)
	return false
}

// refusalResponse is ref rendered for the forwarding engine, which answers
// with an *http.Response, with its Sspemu-Reason header.
func refusalResponse(req *http.Request, f gpconnect.Format, ref *gpconnect.Refusal) *http.Response {
	resp := ref.Response(req, f)
	gpconnect.SetReason(resp.Header, ref.Reason)
	return resp
}
