package admin

import (
	"net/url"
	"slices"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
	"sspemu/proxy"
)

// OutcomeTLS is the outcome of a connection refused at the TLS handshake:
// the name of the rule that refused it, since such a connection never
// reaches a decision of the chain.
const OutcomeTLS = string(gpconnect.RuleTLS)

// TLSRefusal is a refused TLS handshake as /api/transactions lists it: a
// transaction that never reached the chain, so it has no trace ID, no
// ASIDs and no audit record, only the client's address and the reason.
type TLSRefusal struct {
	Time     time.Time      `json:"time"`
	Decision string         `json:"decision"` // always OutcomeTLS
	Rule     gpconnect.Rule `json:"rule"`     // always gpconnect.RuleTLS
	Client   string         `json:"client"`
	Reason   string         `json:"reason"` // one of proxy.HandshakeReasons
	Detail   string         `json:"detail"`
	Advice   string         `json:"advice"`
}

// tlsFilterParams are the query parameters a TLS refusal can satisfy; any
// other (trace_id, from, to, interaction, ...) names something a refused
// handshake does not have, so none is listed.
var tlsFilterParams = []string{"outcome", "since", "limit", "rule"}

// withTLSRefusals merges the kept TLS refusals into a transactions answer,
// newest first, under the same filter and limit: they are listed when the
// query asks for no outcome or for outcome tls, and for nothing a refused
// handshake does not have.
func withTLSRefusals(ts []audit.Transaction, q url.Values, f audit.Filter, refusals []proxy.Handshake) []any {
	limit := f.Limit
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	out := make([]any, 0, min(limit, len(ts)+len(refusals)))
	var tls []proxy.Handshake
	if tlsListed(q) {
		for _, h := range refusals {
			if f.Since.IsZero() || !h.Time.Before(f.Since) {
				tls = append(tls, h)
			}
		}
	}
	if q.Get("outcome") == OutcomeTLS {
		ts = nil
	}
	// Both lists are newest first: merge them.
	i, k := 0, 0
	for len(out) < limit && (i < len(ts) || k < len(tls)) {
		if k >= len(tls) || (i < len(ts) && !ts[i].Time.Before(tls[k].Time)) {
			out = append(out, ts[i])
			i++
			continue
		}
		h := tls[k]
		out = append(out, TLSRefusal{Time: h.Time, Decision: OutcomeTLS, Rule: gpconnect.RuleTLS, Client: h.Client, Reason: h.Reason, Detail: h.Detail, Advice: h.Advice})
		k++
	}
	return out
}

func tlsListed(q url.Values) bool {
	for name, vs := range q {
		if !slices.Contains(tlsFilterParams, name) && slices.ContainsFunc(vs, func(v string) bool { return v != "" }) {
			return false
		}
	}
	switch q.Get("outcome") {
	case "", OutcomeTLS:
	default:
		return false
	}
	switch gpconnect.Rule(q.Get("rule")) {
	case "", gpconnect.RuleTLS:
	default:
		return false
	}
	return true
}
