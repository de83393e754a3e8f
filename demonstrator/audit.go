package demonstrator

import (
	"context"
	"net/http"

	"sspemu/audit"
	"sspemu/faults"
	"sspemu/gpconnect"
)

// Auditor is where the demonstrator keeps its own audit, as a GP Connect
// provider must (a tamper-evident, sequenced record of every access and
// every refusal); *audit.Store is one. Append must return an error whenever
// the record is not durable, because the demonstrator then refuses the
// request rather than answer it unrecorded.
type Auditor interface {
	Append(ctx context.Context, r *audit.Record) (uint64, error)
}

// maxAuditField bounds what the audit copies from a header or the request
// target, so a client cannot make one record arbitrarily large.
const maxAuditField = 2048

// record appends the audit record of the request's outcome: rep when it is
// answered, o when it is refused. It marks x audited whatever happens, so a
// request never gets a second record; an error means the record is not in
// the audit and the caller must answer 500 without acting. The record is
// built as the SSP builds its own (audit.NewRecord); a practice has no SSP
// rules, so its record's rule is the error code it answered with, or fault
// when a fault closed the connection unanswered.
func (d *Demonstrator) record(x *exchange, rep *reply, o *gpconnect.Refusal) error {
	x.audited = true
	if d.auditor == nil {
		return nil
	}
	r := x.r
	tok := x.token
	if tok == nil {
		// A request refused before the JWT check still names its user
		// when its token can be decoded.
		tok, _ = gpconnect.ParseAuthorization(r.Header.Get("Authorization"))
	}
	dec := audit.Decided{Start: x.start, Headers: x.hdr, Token: tok, Bound: clip, Fault: clip(x.answer.Get(faults.Header))}
	switch {
	case o != nil && o.Drop: // the connection is closed unanswered
		dec.Decision, dec.Rule, dec.Reason = gpconnect.DecisionError, gpconnect.RuleFault, o.Reason
	case o != nil:
		dec.Decision, dec.Rule, dec.Status, dec.Reason = gpconnect.DecisionRefused, gpconnect.Rule(o.Code), o.Status, o.Reason
	case rep.status >= 400:
		dec.Decision, dec.Status, dec.Reason = gpconnect.DecisionRefused, rep.status, x.note
	default:
		dec.Decision, dec.Status, dec.Reason = gpconnect.DecisionAnswered, rep.status, x.note
	}
	_, err := d.auditor.Append(r.Context(), audit.NewRecord(r, dec))
	return err
}

// auditFailed is the answer to a request whose audit record could not be
// made durable: like the SSP, the demonstrator fails closed.
func auditFailed(err error) *gpconnect.Refusal {
	return refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
		"the provider could not record the request in its audit, so it did not act on it: %v", err)
}

// clip cuts s to maxAuditField bytes, marking the cut.
func clip(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	return s[:maxAuditField] + "...(cut)"
}
