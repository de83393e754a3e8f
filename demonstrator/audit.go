package demonstrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Decisions written into the provider audit.
const (
	decisionAnswered = "answered" // 1xx to 3xx
	decisionRefused  = "refused"  // 4xx and 5xx, audit failures included
	decisionError    = "error"    // closed unanswered (a reset fault)
)

// maxAuditField bounds what the audit copies from a header or the request
// target, so a client cannot make one record arbitrarily large.
const maxAuditField = 2048

// record appends the audit record of the request's outcome: rep when it is
// answered, o when it is refused. It marks x audited whatever happens, so a
// request never gets a second record; an error means the record is not in
// the audit and the caller must answer 500 without acting.
func (d *Demonstrator) record(x *exchange, rep *reply, o *outcome) error {
	x.audited = true
	if d.auditor == nil {
		return nil
	}
	r := x.r
	rec := &audit.Record{
		Time:        x.start,
		TraceID:     firstOf(x.hdr.TraceID, r.Header.Get(gpconnect.HeaderTraceID)),
		From:        firstOf(x.hdr.From, r.Header.Get(gpconnect.HeaderFrom)),
		To:          firstOf(x.hdr.To, r.Header.Get(gpconnect.HeaderTo)),
		Interaction: firstOf(x.hdr.InteractionID, r.Header.Get(gpconnect.HeaderInteractionID)),
		Method:      clip(r.Method),
		Target:      clip(firstOf(r.RequestURI, r.URL.RequestURI())),
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		rec.ClientSubject = clip(leaf.Subject.String())
		rec.ClientFingerprint = hex.EncodeToString(sum[:])
	}
	tok := x.token
	if tok == nil {
		// A request refused before the JWT check still names its user
		// when its token can be decoded.
		tok, _ = gpconnect.ParseAuthorization(r.Header.Get("Authorization"))
	}
	if tok != nil {
		s := tok.Claims.Summary()
		rec.JWT = &audit.JWT{
			Issuer: clip(s.Issuer), Subject: clip(s.Subject), SDSUserID: clip(s.SDSUserID),
			RoleProfileID: clip(s.RoleProfileID), ODSCode: clip(s.ODSCode), Device: clip(s.Device),
		}
	}
	switch {
	case o != nil && o.status == 0: // the connection is closed unanswered
		rec.Decision, rec.Rule, rec.Reason = decisionError, o.code, o.diagnostics
	case o != nil:
		rec.Decision, rec.Rule, rec.Status, rec.Reason = decisionRefused, o.code, o.status, o.diagnostics
	case rep.status >= 400:
		rec.Decision, rec.Status, rec.Reason = decisionRefused, rep.status, x.note
	default:
		rec.Decision, rec.Status, rec.Reason = decisionAnswered, rep.status, x.note
	}
	rec.Fault = clip(x.answer.Get(faults.Header))
	_, err := d.auditor.Append(r.Context(), rec)
	return err
}

// auditFailed is the answer to a request whose audit record could not be
// made durable: like the SSP, the demonstrator fails closed.
func auditFailed(err error) *outcome {
	return refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
		"the provider could not record the request in its audit, so it did not act on it: %v", err)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return clip(b)
}

// clip cuts s to maxAuditField bytes, marking the cut.
func clip(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	return s[:maxAuditField] + "...(cut)"
}
