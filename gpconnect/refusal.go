package gpconnect

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ReasonHeader carries the plain-language reason of every refusal the SSP
// makes, and of a fault at a practice (design.md, "The request path").
const ReasonHeader = "Sspemu-Reason"

// Shape is which of the two OperationOutcome shapes a refusal is answered
// in.
type Shape uint8

const (
	// ShapeProvider is a GP Connect provider error (ssp-behaviour §7):
	// profile GPConnect-OperationOutcome-1, a Spine error code, and
	// diagnostics that say what to change. The zero Shape, because the
	// practices answer nothing else.
	ShapeProvider Shape = iota
	// ShapeSSP is the SSP's own body (ssp-behaviour §4): the HTTP status
	// as code, display = diagnostics = the token, byte for byte.
	ShapeSSP
)

// Refusal is every refusal on its way to a consumer, from the SSP's chain
// (its rules, limits, faults, audit and provider leg) and from the
// practices alike: one error type, so each refusal is built where it is
// decided, travels as an error, and is rendered by one renderer (Write, or
// Response for the forwarding engine) in the negotiated format.
type Refusal struct {
	// Rule is the SSP rule that refused; empty for a practice's refusal (a
	// practice has no SSP rules; its audit names the error code).
	Rule   Rule
	Status int
	Shape  Shape
	// Token is the SSP token of the SSP shape: the body's display and
	// diagnostics, and the audit record's token.
	Token string
	// Code is the Spine error code of the provider shape.
	Code string
	// IssueCode, when set, replaces the issue type the error table gives
	// Code (the limits say too-costly, the audit outage transient).
	IssueCode string
	// Reason says in plain language why, and what to change: the
	// Sspemu-Reason header and the audit record's reason, and the provider
	// shape's diagnostics unless Diagnostics is set.
	Reason string
	// Diagnostics, when set, is the provider shape's diagnostics instead of
	// Reason.
	Diagnostics string
	// Allow is the Allow header of a 405.
	Allow string
	// Drop closes the connection unanswered once the refusal is recorded
	// (a reset fault at a practice): nothing is rendered.
	Drop bool
}

// Refuse is a provider-shape refusal with a formatted reason: how the
// practices' handlers refuse.
func Refuse(status int, code, format string, args ...any) *Refusal {
	return &Refusal{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Error says status, code or token, and reason, for logs and tests.
func (r *Refusal) Error() string {
	code := r.Code
	if r.Shape == ShapeSSP {
		code = r.Token
	}
	return fmt.Sprintf("%d %s: %s", r.Status, code, r.Reason)
}

// Outcome is the refusal's body in its shape.
func (r *Refusal) Outcome() Outcome {
	if r.Shape == ShapeSSP {
		return SSPOutcome(r.Status, r.Token)
	}
	diag := r.Diagnostics
	if diag == "" {
		diag = r.Reason
	}
	o := ProviderOutcome(r.Status, r.Code, diag)
	if r.IssueCode != "" {
		o.IssueCode = r.IssueCode
	}
	return o
}

// Write renders the refusal as the whole response in format f: its
// OperationOutcome, Content-Type, Content-Length, Cache-Control: no-store
// and, for a 405, Allow. The Sspemu-Reason header is the SSP's to add
// (SetReason), since a practice's refusals carry theirs as diagnostics.
func (r *Refusal) Write(w http.ResponseWriter, f Format) {
	if r.Allow != "" {
		w.Header().Set("Allow", r.Allow)
	}
	WriteOutcome(w, f, r.Status, r.Outcome())
}

// Response renders the refusal as Write does, as an *http.Response: the
// form the forwarding engine answers in when the provider leg fails.
func (r *Refusal) Response(req *http.Request, f Format) *http.Response {
	body := r.Outcome().Marshal(f)
	h := http.Header{}
	if r.Allow != "" {
		h.Set("Allow", r.Allow)
	}
	h.Set("Content-Type", f.ContentType())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		StatusCode:    r.Status,
		Status:        fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// SetReason puts reason in the Sspemu-Reason header; header values cannot
// hold line breaks or other control bytes, so those become spaces.
func SetReason(h http.Header, reason string) {
	h.Set(ReasonHeader, strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, reason))
}
