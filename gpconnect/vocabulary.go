package gpconnect

// The vocabulary of the request path (design.md, "The request path"): the
// names of the SSP's rules and of the decisions a request ends in. They are
// defined here, once, because gpconnect is the one package every user of
// them can import without a cycle: the chain (proxy), the registry's
// decisions (agreements), the fault rules (faults), the practices
// (demonstrator), the metrics and APIs (admin) and the console all import
// gpconnect already, and gpconnect imports none of them; the audit, which
// writes the names into its records, imports it only for these types. The
// strings are a contract: the audit records, the metrics labels,
// /api/transactions, the console and the report carry them as they are,
// so an old audit file keeps its bytes and its hash chain.

// Rule names one check of the SSP's request path: the check that refused
// or failed a request, in its audit and transaction records, the
// ssp_requests_total rule label and the journey's steps.
type Rule string

// The rules, in the order of the request path.
const (
	RuleTLS              Rule = "tls"               // 1. handshake, client certificate, CRL
	RuleLimits           Rule = "limits"            // the consumer leg's limits and framing
	RuleMethod           Rule = "method"            // 2. GET, POST, PUT; OPTIONS answered
	RuleTarget           Rule = "target"            // 3. absolute https:// target
	RuleSSPHeaders       Rule = "ssp-headers"       // 4. Ssp-* headers present and well formed
	RuleCertASID         Rule = "cert-asid"         // 5. certificate FQDN ↔ Ssp-From
	RuleSender           Rule = "sender"            // 6. sender accredited
	RuleReceiver         Rule = "receiver"          //    receiver accredited
	RuleEndpoint         Rule = "endpoint"          //    target under the receiver's endpoint
	RuleAgreement        Rule = "agreement"         //    data-sharing agreement
	RuleJWT              Rule = "jwt"               // 7. the bearer token's claims
	RuleInteractionRoute Rule = "interaction-route" // 8. interaction ↔ verb and path
	RuleAudit            Rule = "audit"             // 9. the audit record made durable
	RuleFault            Rule = "fault"             //    a fault rule acted (fault injection)
	RuleUpstream         Rule = "upstream"          //    the provider leg (502, 504)
)

// rules is every Rule in request-path order; Rules hands out copies.
var rules = [...]Rule{
	RuleTLS, RuleLimits, RuleMethod, RuleTarget, RuleSSPHeaders, RuleCertASID, RuleSender,
	RuleReceiver, RuleEndpoint, RuleAgreement, RuleJWT, RuleInteractionRoute, RuleAudit,
	RuleFault, RuleUpstream,
}

// Rules lists every rule in the order of the request path, so label sets,
// journeys and checks derive from the vocabulary instead of keeping a list
// of their own that could miss one.
func Rules() []Rule { return append([]Rule(nil), rules[:]...) }

// Decision is how a request ended: in the audit and transaction records,
// the ssp_requests_total outcome label and the journey.
type Decision string

// The decisions.
const (
	DecisionForwarded Decision = "forwarded" // passed every rule and went to the provider
	DecisionRefused   Decision = "refused"   // a rule refused it (the SSP's or a practice's refusal)
	DecisionAnswered  Decision = "answered"  // answered without forwarding: a CORS preflight, a practice's answer
	DecisionError     Decision = "error"     // failed: the audit, the provider leg, a reset, a consumer gone
)

// Decisions lists every decision, for label sets and query filters.
func Decisions() []Decision {
	return []Decision{DecisionForwarded, DecisionRefused, DecisionAnswered, DecisionError}
}
