package agreements

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sspemu/gpconnect"
)

// Fidelity picks which SSP the decisions imitate: the published tables
// (spec) or what the live SSP was seen to do (live).
type Fidelity string

// The fidelities of the `ssp.fidelity` setting.
const (
	FidelitySpec Fidelity = "spec"
	FidelityLive Fidelity = "live"
)

// ParseFidelity turns the `ssp.fidelity` setting into a Fidelity, so a
// mistyped value is a configuration error instead of a silent spec.
func ParseFidelity(s string) (Fidelity, error) {
	switch f := Fidelity(s); f {
	case FidelitySpec, FidelityLive:
		return f, nil
	}
	return "", fmt.Errorf("%q is not spec or live", s)
}

// The rule names a refusal carries, in the order Decide applies them; the
// audit record and the error body name them. They are the vocabulary's
// (gpconnect.Rule), named here too for the readers of this package.
const (
	RuleCertASID  = gpconnect.RuleCertASID
	RuleSender    = gpconnect.RuleSender
	RuleReceiver  = gpconnect.RuleReceiver
	RuleEndpoint  = gpconnect.RuleEndpoint
	RuleAgreement = gpconnect.RuleAgreement
)

// Request is what Decide needs from one proxied request: the Ssp-From,
// Ssp-To and Ssp-InteractionID headers, the target URL (everything after
// the SSP's own prefix), the host names of the verified client certificate
// (leaf CN and DNS SANs) and the time to judge agreement dates by.
type Request struct {
	From          string
	To            string
	InteractionID string
	Target        string
	CertNames     []string
	Now           time.Time
}

// Decision is the outcome of the registry checks. Rule is empty when the
// request may be forwarded; otherwise it names the failing rule, Status and
// Token are the SSP's own error (ssp-behaviour §4) and Reason says in plain
// language what to change. Endpoint is the registered service root of To
// whenever To is registered with one, allowed or not.
type Decision struct {
	Rule     gpconnect.Rule
	Status   int
	Token    string
	Reason   string
	Endpoint string
}

// Allowed reports whether every rule passed.
func (d Decision) Allowed() bool { return d.Rule == "" }

// Refusal is a refused decision as the SSP answers it: in its own shape,
// the token as display and diagnostics (ssp-behaviour §4).
func (d Decision) Refusal() *gpconnect.Refusal {
	return &gpconnect.Refusal{Rule: d.Rule, Status: d.Status, Shape: gpconnect.ShapeSSP, Token: d.Token, Reason: d.Reason}
}

// Decide applies the registry rules to one request and returns the first
// that fails, in the order cert-asid, sender, receiver, endpoint,
// agreement (the live order is open, gpconnect issue 37; this one reports
// the most basic mistake first). It is pure: it reads only the Table and r,
// so it is safe for concurrent use, and it does not allocate when the
// request is allowed. An allowed Decision has Status 0.
func (t *Table) Decide(r Request, f Fidelity) Decision {
	var d Decision
	to, toOK := t.byASID[r.To]
	if toOK {
		d.Endpoint = to.sys.Endpoint
	}

	// cert-asid: the certificate must belong to the Ssp-From system.
	from, fromOK := t.byASID[r.From]
	if !fromOK {
		return d.refuse(RuleCertASID, http.StatusForbidden,
			"ASID_CHECK_FAILED_MESSAGESENDER_"+r.From,
			fmt.Sprintf("Ssp-From %s is not a registered ASID: send the ASID of the system this client certificate belongs to, or register it under registry.systems", show(r.From)))
	}
	if !certNamesMatch(r.CertNames, from.sys.FQDN) {
		return d.refuse(RuleCertASID, http.StatusForbidden,
			"ASID_CHECK_FAILED_MESSAGESENDER_"+r.From,
			certReason(r.CertNames, r.From, from.sys.FQDN))
	}

	// sender: the Ssp-From system must be accredited to send the interaction.
	in, known := t.catalogue[r.InteractionID]
	if !known {
		// The tables say 403 for an interaction the sender may not send,
		// and an unknown ID is one of those. The live SSP was seen answering
		// 415 with the same token for an unknown interaction ID
		// (gpconnect-provider-testing issues 97 and 178), so live fidelity
		// does that.
		status := http.StatusForbidden
		if f == FidelityLive {
			status = http.StatusUnsupportedMediaType
		}
		return d.refuse(RuleSender, status,
			"ASID_CHECK_FAILED_MESSAGESENDER_"+r.From,
			fmt.Sprintf("Ssp-InteractionID %s is not a GP Connect 1.2.7 interaction this SSP knows: send a full URN starting urn:nhs:names:services:gpconnect: (e.g. urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1)", show(r.InteractionID)))
	}
	if _, ok := from.sends[r.InteractionID]; !ok {
		return d.refuse(RuleSender, http.StatusForbidden,
			"ASID_CHECK_FAILED_MESSAGESENDER_"+r.From,
			fmt.Sprintf("ASID %s (%s) is not accredited to send %s (%s): add it to the sends of system %s in registry.systems", r.From, show(from.sys.Name), in.ID, in.Name, r.From))
	}

	// receiver: the Ssp-To system must be accredited to receive it.
	if !toOK {
		return d.refuse(RuleReceiver, http.StatusForbidden,
			"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_"+r.To,
			fmt.Sprintf("Ssp-To %s is not a registered ASID: send the ASID of the provider you mean to call, or register it under registry.systems", show(r.To)))
	}
	if _, ok := to.receives[r.InteractionID]; !ok {
		return d.refuse(RuleReceiver, http.StatusForbidden,
			"PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_"+r.To,
			fmt.Sprintf("ASID %s (%s) is not accredited to receive %s (%s): call a provider that receives it, or add it to the receives of system %s in registry.systems", r.To, show(to.sys.Name), in.ID, in.Name, r.To))
	}

	// endpoint: the target must start with the registered service root,
	// byte for byte, ending at a segment or query boundary.
	if !endpointMatches(r.Target, to.sys.Endpoint) {
		return d.refuse(RuleEndpoint, http.StatusBadRequest,
			"ENDPOINT_"+to.sys.Endpoint+"_CPAID_"+to.sys.CPAID+"_VARIES_FROM_TARGETURL_"+r.Target,
			endpointReason(r.Target, r.To, to.sys.Endpoint))
	}

	// agreement: a data-sharing agreement for the pair must cover the
	// interaction now.
	ws := t.windows[agreementKey{r.From, r.To, r.InteractionID}]
	for _, w := range ws {
		if w.covers(r.Now) {
			return d
		}
	}
	return d.refuse(RuleAgreement, http.StatusForbidden,
		"FOT_CHECK_FAILED_MESSAGESENDER_"+r.From+"_MESSAGERECEIVER_"+r.To,
		agreementReason(r, in.Name, ws))
}

func (d Decision) refuse(rule gpconnect.Rule, status int, token, reason string) Decision {
	d.Rule, d.Status, d.Token, d.Reason = rule, status, token, reason
	return d
}

// certNamesMatch compares host names as DNS does: ASCII letters without
// regard to case, nothing else folded (strings.EqualFold would let the
// Kelvin sign stand for 'k').
func certNamesMatch(names []string, fqdn string) bool {
	if fqdn == "" {
		return false
	}
	for _, n := range names {
		if asciiEqualFold(n, fqdn) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// endpointMatches reports whether target starts with root byte for byte and
// the prefix ends where a path segment or the query begins, so
// ".../gpconnect" does not admit ".../gpconnectX".
func endpointMatches(target, root string) bool {
	if root == "" || !strings.HasPrefix(target, root) {
		return false
	}
	if len(target) == len(root) {
		return true
	}
	next := target[len(root)]
	return next == '/' || next == '?'
}

func certReason(names []string, from, fqdn string) string {
	if fqdn == "" {
		return fmt.Sprintf("ASID %s is registered without an FQDN, so no client certificate can match it: set its fqdn in registry.systems to the host name in its certificate", from)
	}
	if len(names) == 0 {
		return fmt.Sprintf("the client certificate carries no host name (CN or DNS SAN) but ASID %s is registered with FQDN %s: use a certificate issued to %s", from, fqdn, fqdn)
	}
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = show(n)
	}
	return fmt.Sprintf("the client certificate names %s (CN and DNS SANs) but ASID %s is registered with FQDN %s: send Ssp-From of the system this certificate belongs to, or register its FQDN", strings.Join(shown, ", "), from, fqdn)
}

func endpointReason(target, to, root string) string {
	hint := ""
	switch {
	case root == "":
		return fmt.Sprintf("ASID %s has no registered endpoint: set its endpoint in registry.systems", to)
	case strings.HasPrefix(target, root):
		hint = " (the registered root runs on into a longer path segment)"
	case len(target) >= len(root) && strings.EqualFold(target[:len(root)], root):
		hint = " (it differs only in letter case)"
	case strings.Contains(target, ":443/") && !strings.Contains(root, ":443/"):
		hint = " (it adds a port :443 the registered endpoint does not have)"
	}
	return fmt.Sprintf("the target URL %s does not start with the endpoint registered for ASID %s, %s%s: send the request to %s followed by the interaction's path, byte for byte (same host name, no IP address instead of it, no added port, same case)", show(target), to, root, hint, root)
}

func agreementReason(r Request, name string, ws []window) string {
	if len(ws) == 0 {
		return fmt.Sprintf("no data-sharing agreement from %s to %s covers %s (%s); add it under registry.agreements", r.From, r.To, r.InteractionID, name)
	}
	periods := make([]string, len(ws))
	for i, w := range ws {
		periods[i] = "from " + dateOrOpen(w.notBefore, "the start") + " until " + dateOrOpen(w.notAfter, "no end")
	}
	return fmt.Sprintf("the data-sharing agreement from %s to %s covering %s (%s) is not in force at %s: it runs %s (not_before inclusive, not_after exclusive); change not_before/not_after under registry.agreements", r.From, r.To, r.InteractionID, name, r.Now.UTC().Format(time.RFC3339), strings.Join(periods, "; "))
}

func dateOrOpen(t time.Time, open string) string {
	if t.IsZero() {
		return open
	}
	return t.UTC().Format(time.RFC3339)
}

// show makes a value from a request safe to put in a reason (which also
// travels as a response header): control characters are quoted and long
// values cut.
func show(s string) string {
	const limit = 200
	cut := len(s) > limit
	if cut {
		s = s[:limit]
	}
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '"' }) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
}
