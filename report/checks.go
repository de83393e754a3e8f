package report

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"sspemu/gpconnect"
	"sspemu/proxy"
)

// evaluate decides one test over the consumer's calls, without a Spine
// services journal.
func evaluate(t Test, calls []*call) Result { return evaluateIn(t, calls, nil) }

// evaluateIn decides one test over the consumer's calls and the Spine
// services journal (nil when there is none).
func evaluateIn(t Test, calls []*call, j *journal) Result {
	r := Result{ID: t.ID, Group: t.Group, Title: t.Title, SCAL: t.SCAL, CannotProve: t.CannotProve, Note: t.Note, Source: t.Source}
	if r.SCAL == nil {
		r.SCAL = []string{}
	}
	if jc, ok := journalChecks[t.Check]; ok {
		r.Result, r.Why, r.Evidence = jc(calls, j)
		if r.Evidence == nil {
			r.Evidence = []Evidence{}
		}
		return r
	}
	check, ok := checks[t.Check]
	if !ok {
		r.Result, r.Why = NotExercised, fmt.Sprintf("no check named %q (catalogue error)", t.Check)
		return r
	}
	var examples, counters []*call
	var why string
	r.Result, why, examples, counters = check(t, calls)
	r.Why = why
	r.Evidence = []Evidence{}
	for i, c := range examples {
		if i == maxEvidence {
			break
		}
		r.Evidence = append(r.Evidence, evidence(t, c, false))
	}
	for i, c := range counters {
		if i == maxEvidence {
			break
		}
		r.Evidence = append(r.Evidence, evidence(t, c, true))
	}
	return r
}

// A check returns the result, why, the exemplar calls and the calls that
// speak against it.
type checkFunc func(t Test, calls []*call) (result, why string, examples, counters []*call)

// journalChecks are the checks that read the Spine services journal too;
// they give their evidence themselves, journal entries among it.
var journalChecks = map[string]func(calls []*call, j *journal) (result, why string, ev []Evidence){
	"sds-asid":     func(cs []*call, j *journal) (string, string, []Evidence) { return sdsCheck(false, j, cs) },
	"sds-endpoint": func(cs []*call, j *journal) (string, string, []Evidence) { return sdsCheck(true, j, cs) },
}

var checks = map[string]checkFunc{
	"sds":                   checkSDS,
	"tls-version":           checkTLSVersion,
	"tls-cipher":            checkTLSCipher,
	"accept-json-send-xml":  checkAcceptJSONSendXML,
	"format-json":           checkFormatJSON,
	"refusal-403":           checkRefusal403,
	"audit-items-ok":        func(t Test, cs []*call) (string, string, []*call, []*call) { return checkAuditItems(cs, true) },
	"audit-items-error":     func(t Test, cs []*call) (string, string, []*call, []*call) { return checkAuditItems(cs, false) },
	"jwt-smartcard":         func(t Test, cs []*call) (string, string, []*call, []*call) { return checkJWT(cs, true) },
	"jwt-no-smartcard":      func(t Test, cs []*call) (string, string, []*call, []*call) { return checkJWT(cs, false) },
	"sequence":              checkSequence,
	"search-count":          checkSearchCount,
	"error-then-fixed":      checkErrorThenFixed,
	"cannot-show":           checkCannotShow,
	"not-recorded":          checkNotRecorded,
	"find-invalid-nhs":      checkFindInvalidNHS,
	"registration-defect":   checkRegistrationDefect,
	"registration-optional": checkRegistrationOptional,
	"slot-search-formed":    checkSlotSearchFormed,
	"slot-search-seasons":   checkSlotSearchSeasons,
	"chunked-gzip":          checkChunkedGzip,
	"spine-headers":         checkSpineHeaders,
	"interaction":           checkInteraction,
}

func filter(calls []*call, keep func(*call) bool) []*call {
	var out []*call
	for _, c := range calls {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

func v2(c *call) bool { return c.rec.V >= 2 }

// v3 reports a call whose transaction carries the answer's facts (record
// version 3): its content type and any provider error code.
func v3(c *call) bool { return c.rec.V >= 3 && c.tx != nil }

// v4 reports a call recorded with version 4: its If-Match and body
// summary are known (nil then means absent), and its transaction's
// Location and ETag.
func v4(c *call) bool { return c.rec.V >= 4 }

func checkSDS(_ Test, calls []*call) (string, string, []*call, []*call) {
	ok := filter(calls, (*call).ok)
	if len(ok) == 0 {
		return NotExercised, "the SSP never sees an SDS query, and no call was forwarded with an Ssp-To and endpoint from SDS", nil, nil
	}
	return NotExercised, fmt.Sprintf("the SSP never sees an SDS query, so the query cannot be shown here; %d forwarded call(s) used an Ssp-To ASID and an endpoint that SDS registers (rules receiver and endpoint passed)", len(ok)), ok, nil
}

func checkTLSVersion(_ Test, calls []*call) (string, string, []*call, []*call) {
	ok := filter(calls, func(c *call) bool { return c.ok() && v2(c) })
	good := filter(ok, func(c *call) bool {
		return c.rec.TLSVersion == "TLS 1.2" && c.rec.ClientSubject != "" && c.rec.ClientFingerprint != ""
	})
	bad := filter(ok, func(c *call) bool { return c.rec.TLSVersion != "TLS 1.2" })
	switch {
	case len(good) > 0:
		return Met, "a call over TLS 1.2 with a client certificate the SSP verified (chain, CRL and cert-asid) was answered with success", good, bad
	case len(bad) > 0:
		return NotMet, "successful calls were made, but not over TLS 1.2, which Spine requires", nil, bad
	}
	return NotExercised, "no successful call with the TLS version recorded (record version 2)", nil, nil
}

// spineSuites are the IANA names of the Spine cipher suites the SSP offers.
func spineSuites() map[string]bool {
	m := map[string]bool{}
	for _, id := range proxy.SpineCipherSuites {
		m[tls.CipherSuiteName(id)] = true
	}
	return m
}

func checkTLSCipher(_ Test, calls []*call) (string, string, []*call, []*call) {
	suites := spineSuites()
	ok := filter(calls, func(c *call) bool { return c.ok() && v2(c) && c.rec.TLSCipher != "" })
	good := filter(ok, func(c *call) bool { return suites[c.rec.TLSCipher] })
	bad := filter(ok, func(c *call) bool { return !suites[c.rec.TLSCipher] })
	switch {
	case len(good) > 0 && len(bad) == 0:
		return Met, "successful calls used a Spine cipher suite (AESGCM+EECDH, AESGCM+EDH, AES256+EECDH, AES256+EDH families)", good, nil
	case len(bad) > 0:
		return NotMet, "a successful call used a cipher suite outside the Spine families", good, bad
	}
	return NotExercised, "no successful call with the cipher suite recorded (record version 2)", nil, nil
}

func isFHIR(v *string, kind string) bool {
	if v == nil {
		return false
	}
	s := strings.ToLower(*v)
	return strings.Contains(s, "application/fhir+"+kind) || strings.Contains(s, "application/"+kind+"+fhir")
}

// answeredJSON reports a call answered with success in FHIR JSON: from
// record version 3 the transaction shows the answer's Content-Type; an
// older call, whose answer's type was not recorded, counts on its status.
func answeredJSON(c *call) bool {
	if !c.ok() {
		return false
	}
	if !v3(c) {
		return true
	}
	ct := c.tx.RespContentType
	return isFHIR(&ct, "json")
}

func checkAcceptJSONSendXML(_ Test, calls []*call) (string, string, []*call, []*call) {
	tried := filter(calls, func(c *call) bool { return v2(c) && isFHIR(c.rec.ContentType, "xml") && isFHIR(c.rec.Accept, "json") })
	good := filter(tried, answeredJSON)
	switch {
	case len(good) > 0:
		return Met, "a call sent FHIR XML (Content-Type) asking for FHIR JSON (Accept) and was answered with success in FHIR JSON (the answer's Content-Type, from audit record version 3)", good, nil
	case len(tried) > 0:
		return NotMet, "calls sent FHIR XML asking for FHIR JSON, but none was answered with success in FHIR JSON", nil, tried
	}
	return NotExercised, "no call sent Content-Type FHIR XML with Accept FHIR JSON", nil, nil
}

func queryOf(target string) url.Values {
	_, q, _ := strings.Cut(target, "?")
	v, _ := url.ParseQuery(q)
	return v
}

func checkFormatJSON(_ Test, calls []*call) (string, string, []*call, []*call) {
	tried := filter(calls, func(c *call) bool {
		f := strings.ToLower(queryOf(c.rec.Target).Get("_format"))
		return v2(c) && c.rec.Accept == nil && (f == "json" || strings.Contains(f, "fhir+json") || strings.Contains(f, "json+fhir")) &&
			(c.rec.ContentType == nil || isFHIR(c.rec.ContentType, "json"))
	})
	good := filter(tried, answeredJSON)
	switch {
	case len(good) > 0:
		return Met, "a call without Accept, with _format JSON (and a JSON Content-Type if any), was answered with success in FHIR JSON (the answer's Content-Type, from audit record version 3)", good, nil
	case len(tried) > 0:
		return NotMet, "calls without Accept and with _format JSON were made, but none was answered with success in FHIR JSON", nil, tried
	}
	return NotExercised, "no call left Accept out and asked for JSON with _format", nil, nil
}

// code is the error code of a call's answer: the provider's
// OperationOutcome code when forwarded (record version 3), the SSP's
// token when it refused.
func code(c *call) string {
	if c.rec.Decision == gpconnect.DecisionForwarded {
		if c.tx != nil {
			return c.tx.ProviderCode
		}
		return ""
	}
	return c.rec.Token
}

func checkRefusal403(_ Test, calls []*call) (string, string, []*call, []*call) {
	got := filter(calls, func(c *call) bool { return c.status() == 403 })
	consent := filter(got, func(c *call) bool {
		return c.rec.Decision == gpconnect.DecisionForwarded && v3(c) && code(c) == gpconnect.CodeNoPatientConsent
	})
	unknown := filter(got, func(c *call) bool { return c.rec.Decision == gpconnect.DecisionForwarded && !v3(c) })
	switch {
	case len(consent) > 0:
		return Met, "the provider answered 403 with the OperationOutcome code NO_PATIENT_CONSENT (shown: the code and any fault rule that produced it); handling it is the consumer's part", consent, nil
	case len(unknown) > 0:
		return Met, "the consumer received a 403 from the provider (its OperationOutcome code was not recorded before audit record version 3; shown: the status and any fault rule that produced it); handling it is the consumer's part", unknown, nil
	case len(got) > 0:
		return NotExercised, "403 answers were received, but none with the code NO_PATIENT_CONSENT (in 1.2.7 Foundations and Appointments, add a provider-side fault rule: status 403, code NO_PATIENT_CONSENT)", nil, got
	}
	return NotExercised, "no call was answered 403 (in 1.2.7 Foundations and Appointments, add a provider-side fault rule: status 403, code NO_PATIENT_CONSENT)", nil, nil
}

func hasAuditItems(c *call) bool {
	j := c.rec.JWT
	return c.rec.TraceID != "" && c.rec.From != "" && c.rec.To != "" && c.rec.Interaction != "" &&
		j != nil && j.Subject != "" && j.SDSUserID != "" && j.RoleProfileID != "" && j.ODSCode != ""
}

func checkAuditItems(calls []*call, success bool) (string, string, []*call, []*call) {
	var tried []*call
	if success {
		tried = filter(calls, (*call).ok)
	} else {
		tried = filter(calls, func(c *call) bool { return c.status() >= 400 })
	}
	good := filter(tried, hasAuditItems)
	what := "successful"
	if !success {
		what = "unsuccessful"
	}
	switch {
	case len(good) > 0:
		return Met, "for " + what + " calls the consumer sent every item it must audit (Ssp-TraceID, Ssp-From, Ssp-To, Ssp-InteractionID, JWT sub, SDS user ID, role profile ID, organisation); its own audit of them is not shown", good, nil
	case len(tried) > 0:
		return NotMet, what + " calls lacked an item the consumer must audit", nil, tried
	}
	return NotExercised, "no " + what + " call", nil, nil
}

func claimsPassed(c *call) bool {
	if len(c.rec.Claims) == 0 {
		return false
	}
	for _, v := range c.rec.Claims {
		if v.Verdict != gpconnect.VerdictPassed {
			return false
		}
	}
	return true
}

func claimFailed(c *call) bool {
	for _, v := range c.rec.Claims {
		if v.Verdict == gpconnect.VerdictFailed {
			return true
		}
	}
	return false
}

func checkJWT(calls []*call, smartcard bool) (string, string, []*call, []*call) {
	good := filter(calls, func(c *call) bool {
		if !c.ok() || !claimsPassed(c) || c.rec.JWT == nil {
			return false
		}
		sds := c.rec.JWT.SDSUserID
		if smartcard {
			return sds != "" && sds != "UNK" && c.rec.JWT.RoleProfileID != "" && c.rec.JWT.RoleProfileID != "UNK"
		}
		return sds == "UNK"
	})
	bad := filter(calls, claimFailed)
	kind := "with a smartcard (SDS user ID and role profile ID set)"
	if !smartcard {
		kind = "without a smartcard (SDS user ID UNK)"
	}
	switch {
	case len(bad) > 0:
		return NotMet, "calls carried a JWT with a claim that failed GP Connect's rules", good, bad
	case len(good) > 0:
		return Met, "a successful call carried a JWT whose every claim passed, for a practitioner " + kind, good, nil
	}
	return NotExercised, "no successful call with every JWT claim judged and passed for a practitioner " + kind, nil, nil
}

func checkChunkedGzip(_ Test, calls []*call) (string, string, []*call, []*call) {
	tried := filter(calls, func(c *call) bool {
		return v2(c) && strings.Contains(c.rec.TransferEncoding, "chunked") &&
			c.rec.AcceptEncoding != nil && strings.Contains(strings.ToLower(*c.rec.AcceptEncoding), "gzip")
	})
	good := filter(tried, (*call).ok)
	switch {
	case len(good) > 0:
		return Met, "a call with Transfer-Encoding chunked and Accept-Encoding gzip was answered with success", good, nil
	case len(tried) > 0:
		return NotMet, "calls with chunked transfer and gzip were made, but none was answered with success", nil, tried
	}
	return NotExercised, "no call sent Transfer-Encoding chunked with Accept-Encoding gzip (a chunked body exists only on POST or PUT)", nil, nil
}

// headerRules are the SSP rules a Spine header mistake is refused by.
var headerRules = map[gpconnect.Rule]bool{
	gpconnect.RuleSSPHeaders: true, gpconnect.RuleCertASID: true, gpconnect.RuleReceiver: true,
	gpconnect.RuleEndpoint: true, gpconnect.RuleInteractionRoute: true,
}

func checkSpineHeaders(_ Test, calls []*call) (string, string, []*call, []*call) {
	bad := filter(calls, func(c *call) bool {
		return (c.rec.Decision == gpconnect.DecisionRefused && headerRules[c.rec.Rule]) || c.ambiguous ||
			strings.Contains(c.rec.Reason, string(gpconnect.RuleInteractionRoute)+" (logged, not enforced)")
	})
	good := filter(calls, func(c *call) bool { return c.ok() && !c.ambiguous })
	switch {
	case len(bad) > 0:
		return NotMet, "calls had Spine header faults: refused by ssp-headers, cert-asid, receiver, endpoint or interaction-route, a mismatch logged only, or an Ssp-TraceID used more than once", good, bad
	case len(good) > 0:
		return Met, "every call's Ssp-* headers passed (trace ID a UUID used once; Ssp-From the certificate's ASID; Ssp-To owning the endpoint; Ssp-InteractionID matching verb and path)", good, nil
	}
	return NotExercised, "no successful call", nil, nil
}

func matchesQuery(t Test, target string) bool {
	q := queryOf(target)
	has := func(cond string) bool {
		k, v, eq := strings.Cut(cond, "=")
		vs, present := q[k]
		if !eq {
			return present
		}
		for _, x := range vs {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, c := range t.QueryHas {
		if !has(c) {
			return false
		}
	}
	for _, c := range t.QueryLacks {
		if has(c) {
			return false
		}
	}
	return true
}

func expected(expect string, c *call) bool {
	s := c.status()
	switch expect {
	case "ok":
		return c.ok()
	case "4xx":
		return s >= 400 && s < 500
	}
	n, _ := strconv.Atoi(expect)
	return s == n
}

func checkInteraction(t Test, calls []*call) (string, string, []*call, []*call) {
	tried := filter(calls, func(c *call) bool { return c.rec.Interaction == t.Interaction && matchesQuery(t, c.rec.Target) })
	good := filter(tried, func(c *call) bool { return expected(t.Expect, c) })
	want := "answered with success"
	if t.Expect != "ok" {
		want = "answered " + t.Expect
	}
	name := t.Interaction[strings.LastIndex(t.Interaction, ":")+1:]
	cond := ""
	if len(t.QueryHas) > 0 {
		cond += " with " + strings.Join(t.QueryHas, ", ")
	}
	if len(t.QueryLacks) > 0 {
		cond += " without " + strings.Join(t.QueryLacks, ", ")
	}
	switch {
	case len(good) > 0:
		return Met, fmt.Sprintf("a %s call%s was %s", name, cond, want), good, nil
	case len(tried) > 0 && t.Expect == "ok":
		return NotMet, fmt.Sprintf("%s calls%s were made, but none was %s", name, cond, want), nil, tried
	case len(tried) > 0:
		return NotExercised, fmt.Sprintf("%s calls%s were made, but none was %s, so the error handling was not exercised", name, cond, want), nil, tried
	}
	return NotExercised, fmt.Sprintf("no %s call%s", name, cond), nil, nil
}

// evidence is what was checked on one call, for the reader.
func evidence(t Test, c *call, counter bool) Evidence {
	r := &c.rec
	e := Evidence{Seq: c.seq, TraceID: r.TraceID, Time: r.Time.UTC(), Status: c.status(), Counter: counter}
	add := func(format string, args ...any) { e.Checked = append(e.Checked, fmt.Sprintf(format, args...)) }
	add("%s %s -> %s, status %d", r.Method, r.Target, r.Decision, c.status())
	if r.Decision != gpconnect.DecisionForwarded {
		add("refused by rule %s: %s %s", r.Rule, r.Token, r.Reason)
	} else if r.Reason != "" {
		add("note: %s", r.Reason)
	}
	add("interaction %s", r.Interaction)
	if c.ambiguous {
		add("Ssp-TraceID %s is used by more than one record: the transaction could not be joined", r.TraceID)
	}
	if fault := r.Fault; fault != "" || (c.tx != nil && c.tx.Fault != "") {
		if fault == "" {
			fault = c.tx.Fault
		}
		add("exercised through fault rule %s", fault)
	}
	if r.V >= 2 {
		add("TLS %s, cipher suite %s, %s", orDash(strings.TrimPrefix(r.TLSVersion, "TLS ")), orDash(r.TLSCipher), orDash(r.Proto))
	}
	if r.ClientSubject != "" {
		add("client certificate %s (SHA-256 %s)", r.ClientSubject, short(r.ClientFingerprint))
	}
	if r.ClientIssuer != "" {
		add("client certificate issued by %s, serial %s, valid until %s", r.ClientIssuer, orDash(r.ClientSerial), orDash(r.ClientNotAfter))
	}
	if tx := c.tx; tx != nil && r.V >= 3 {
		add("answer Content-Type %s; Content-Encoding %s", orDash(tx.RespContentType), orDash(tx.RespContentEncoding))
		if tx.ProviderCode != "" || tx.ProviderIssueCode != "" {
			add("provider OperationOutcome code %s (issue code %s)", orDash(tx.ProviderCode), orDash(tx.ProviderIssueCode))
		}
		if tx.Entries != nil {
			add("searchset of %d entries%s", *tx.Entries, entryTypes(tx.EntryTypes))
		}
		if tx.Location != "" || tx.ETag != "" {
			add("answer Location %s; ETag %s", orDash(tx.Location), orDash(tx.ETag))
		}
	}
	if r.V >= 4 && (r.Method == "POST" || r.Method == "PUT") {
		add("If-Match %s; %s", hdr(r.IfMatch), describeBody(r.Body))
	}
	if t.Group == GroupSpine || counter {
		if r.V >= 2 {
			add("Accept %s; Content-Type %s; Accept-Encoding %s; Transfer-Encoding %s", hdr(r.Accept), hdr(r.ContentType), hdr(r.AcceptEncoding), orDash(r.TransferEncoding))
		}
		if j := r.JWT; j != nil {
			add("JWT sub %s, sds_user_id %s, role_profile_id %s, ods %s", orDash(j.Subject), orDash(j.SDSUserID), orDash(j.RoleProfileID), orDash(j.ODSCode))
		}
		if len(r.Claims) > 0 {
			var vs []string
			for _, v := range r.Claims {
				s := v.Claim + " " + v.Verdict
				if v.Reason != "" {
					s += " (" + v.Reason + ")"
				}
				vs = append(vs, s)
			}
			add("JWT claims: %s", strings.Join(vs, "; "))
		}
	}
	return e
}

func entryTypes(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(keys, ", ") + ")"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func hdr(v *string) string {
	if v == nil {
		return "(absent)"
	}
	return strconv.Quote(*v)
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
