package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"sspemu/gpconnect"
)

// Decided is one party's decision on one request, and what it learnt of the
// request while deciding: what NewRecord needs besides the request itself.
// The SSP fills it from its chain's scope, a practice from its edge.
type Decided struct {
	Start time.Time // when the request arrived
	// Headers are the Ssp-* headers as validated; a field left empty (the
	// request was refused before they were judged, or for them) is taken
	// from the request as sent, through Bound, so the record still says
	// who asked for what.
	Headers gpconnect.SspHeaders
	// Target is the target as judged; empty: the request URI as sent,
	// through Bound.
	Target string
	// ClientSubject and ClientFingerprint identify the client certificate;
	// empty: taken from the request's verified leaf (the SSP passes its
	// cached ones, so it does not hash the certificate per request).
	ClientSubject, ClientFingerprint string
	// Token is the bearer token as decoded; nil: the record has no jwt.
	Token *gpconnect.Token
	// Bound cuts whatever is copied from the request as sent, so a client
	// cannot make one record arbitrarily large.
	Bound func(string) string

	Decision gpconnect.Decision
	Rule     gpconnect.Rule
	Status   int
	SSPToken string // the SSP token of the SSP's own refusals
	Reason   string
	Fault    string // the fault rules that acted, comma-separated
}

// NewRecord is the audit record of d on r, built the same way for the SSP
// and the practices, so both audits describe a request in the same terms.
// The SSP adds the members of record version 2 itself.
func NewRecord(r *http.Request, d Decided) *Record {
	bound := d.Bound
	rec := &Record{
		Time:              d.Start,
		TraceID:           d.Headers.TraceID,
		From:              d.Headers.From,
		To:                d.Headers.To,
		Interaction:       d.Headers.InteractionID,
		Method:            bound(r.Method),
		Target:            d.Target,
		ClientSubject:     d.ClientSubject,
		ClientFingerprint: d.ClientFingerprint,
		Decision:          d.Decision,
		Rule:              d.Rule,
		Status:            d.Status,
		Token:             d.SSPToken,
		Reason:            d.Reason,
		Fault:             d.Fault,
	}
	for _, f := range []struct {
		dst    *string
		header string
	}{{&rec.TraceID, gpconnect.HeaderTraceID}, {&rec.From, gpconnect.HeaderFrom}, {&rec.To, gpconnect.HeaderTo}, {&rec.Interaction, gpconnect.HeaderInteractionID}} {
		if *f.dst == "" {
			*f.dst = bound(r.Header.Get(f.header))
		}
	}
	if rec.Target == "" {
		uri := r.RequestURI
		if uri == "" && r.URL != nil {
			uri = r.URL.RequestURI()
		}
		rec.Target = bound(uri)
	}
	if rec.ClientSubject == "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		rec.ClientSubject = bound(leaf.Subject.String())
		rec.ClientFingerprint = hex.EncodeToString(sum[:])
	}
	if d.Token != nil {
		s := d.Token.Claims.Summary()
		rec.JWT = &JWT{
			Issuer: bound(s.Issuer), Subject: bound(s.Subject), SDSUserID: bound(s.SDSUserID),
			RoleProfileID: bound(s.RoleProfileID), ODSCode: bound(s.ODSCode), Device: bound(s.Device),
		}
	}
	return rec
}
