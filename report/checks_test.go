package report

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
	"sspemu/proxy"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ptr(s string) *string { return &s }

// goodRecord is a version 2 record of a call that the SSP forwarded and
// that was answered 200, with every member a check reads filled in.
func goodRecord() audit.Record {
	return audit.Record{
		Time: t0, TraceID: "7f1c1a4e-0000-4000-8000-000000000001", From: "200000000359", To: "918999198993",
		Interaction: iaMetadata, Method: "GET", Target: "/B82617/STU3/1/gpconnect/fhir/metadata",
		ClientSubject: "CN=consumer", ClientFingerprint: "ab12cd34ef56ab12cd34ef56ab12cd34",
		JWT:      &audit.JWT{Subject: "G13579135", SDSUserID: "G13579135", RoleProfileID: "R8000", ODSCode: "A11111"},
		Decision: "forwarded", Rule: "", Status: 200,
		V: 2, TLSVersion: "TLS 1.2", TLSCipher: tls.CipherSuiteName(proxy.SpineCipherSuites[0]), Proto: "HTTP/1.1",
		Accept: ptr("application/fhir+json"),
		Claims: []audit.ClaimVerdict{{Claim: "iss", Verdict: "passed"}, {Claim: "sub", Verdict: "passed"}},
	}
}

// rc builds a call from the good record changed by edits.
func rc(edits ...func(*audit.Record)) *call {
	r := goodRecord()
	for _, e := range edits {
		e(&r)
	}
	return &call{seq: 1, hash: "h", rec: r}
}

// v1 strips the record to audit version 1: none of the v2 members.
func v1(r *audit.Record) {
	r.V, r.TLSVersion, r.TLSCipher, r.Proto = 0, "", "", ""
	r.Accept, r.ContentType, r.AcceptEncoding, r.TransferEncoding, r.Claims = nil, nil, nil, "", nil
}

func status(n int) func(*audit.Record) { return func(r *audit.Record) { r.Status = n } }

func refused(rule string, n int) func(*audit.Record) {
	return func(r *audit.Record) {
		r.Decision, r.Rule, r.Status, r.Token, r.Reason = "refused", gpconnect.Rule(rule), n, "BAD_REQUEST", "refused by "+rule
	}
}

type checkCase struct {
	name  string
	test  Test // only the interaction check reads it
	calls []*call
	want  string
	// examples and counters, when not -1, are the evidence counts wanted.
	examples, counters int
}

// runChecks runs one check's table through evaluate, as Build does.
func runChecks(t *testing.T, check string, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(check+"/"+tc.name, func(t *testing.T) {
			tt := tc.test
			tt.ID, tt.Check = "X-1", check
			if tt.Group == "" {
				tt.Group = GroupSpine
			}
			r := evaluate(tt, tc.calls)
			if r.Result != tc.want {
				t.Fatalf("result %q (%s), want %q", r.Result, r.Why, tc.want)
			}
			if r.Why == "" {
				t.Error("no why")
			}
			var ex, co int
			for _, e := range r.Evidence {
				if e.Counter {
					co++
				} else {
					ex++
				}
			}
			if tc.examples >= 0 && ex != tc.examples {
				t.Errorf("%d exemplar(s), want %d: %+v", ex, tc.examples, r.Evidence)
			}
			if tc.counters >= 0 && co != tc.counters {
				t.Errorf("%d counter(s), want %d: %+v", co, tc.counters, r.Evidence)
			}
		})
	}
}

func TestCheckSDS(t *testing.T) {
	runChecks(t, "sds", []checkCase{
		// The SSP never sees SDS, so even a good call leaves it not exercised, with the call as evidence.
		{"forwarded call", Test{}, []*call{rc()}, NotExercised, 1, 0},
		{"only refusals", Test{}, []*call{rc(refused("receiver", 403))}, NotExercised, 0, 0},
		{"v1 record", Test{}, []*call{rc(v1)}, NotExercised, 1, 0},
		{"no calls", Test{}, nil, NotExercised, 0, 0},
	})
}

func TestCheckTLSVersion(t *testing.T) {
	runChecks(t, "tls-version", []checkCase{
		{"TLS 1.2 with client certificate", Test{}, []*call{rc()}, Met, 1, 0},
		{"TLS 1.3 only", Test{}, []*call{rc(func(r *audit.Record) { r.TLSVersion = "TLS 1.3" })}, NotMet, 0, 1},
		{"met despite a TLS 1.3 call, which is listed against", Test{}, []*call{rc(), rc(func(r *audit.Record) { r.TLSVersion = "TLS 1.3" })}, Met, 1, 1},
		{"no client certificate recorded", Test{}, []*call{rc(func(r *audit.Record) { r.ClientFingerprint = "" })}, NotExercised, 0, 0},
		{"v1 record lacks the TLS version", Test{}, []*call{rc(v1)}, NotExercised, 0, 0},
		{"refused only", Test{}, []*call{rc(refused("jwt", 400))}, NotExercised, 0, 0},
		{"forwarded but 500", Test{}, []*call{rc(status(500))}, NotExercised, 0, 0},
	})
}

func TestCheckTLSCipher(t *testing.T) {
	weak := func(r *audit.Record) { r.TLSCipher = tls.CipherSuiteName(tls.TLS_RSA_WITH_AES_128_CBC_SHA) }
	runChecks(t, "tls-cipher", []checkCase{
		{"Spine suite", Test{}, []*call{rc()}, Met, 1, 0},
		{"every Spine suite", Test{}, func() []*call {
			var cs []*call
			for _, id := range proxy.SpineCipherSuites {
				cs = append(cs, rc(func(r *audit.Record) { r.TLSCipher = tls.CipherSuiteName(id) }))
			}
			return cs
		}(), Met, -1, 0},
		{"suite outside Spine", Test{}, []*call{rc(weak)}, NotMet, 0, 1},
		{"one bad suite among good ones", Test{}, []*call{rc(), rc(weak)}, NotMet, 1, 1},
		{"v1 record", Test{}, []*call{rc(v1)}, NotExercised, 0, 0},
		{"v2 with no cipher", Test{}, []*call{rc(func(r *audit.Record) { r.TLSCipher = "" })}, NotExercised, 0, 0},
	})
}

func TestCheckAcceptJSONSendXML(t *testing.T) {
	xmlIn := func(r *audit.Record) { r.ContentType = ptr("application/fhir+xml;charset=utf-8") }
	runChecks(t, "accept-json-send-xml", []checkCase{
		{"XML in, JSON asked, 200", Test{}, []*call{rc(xmlIn)}, Met, 1, 0},
		{"DSTU2 names", Test{}, []*call{rc(func(r *audit.Record) {
			r.ContentType, r.Accept = ptr("Application/XML+FHIR"), ptr("application/json+fhir")
		})}, Met, 1, 0},
		{"XML in, JSON asked, 415", Test{}, []*call{rc(xmlIn, status(415))}, NotMet, 0, 1},
		{"XML in, JSON asked, refused", Test{}, []*call{rc(xmlIn, refused("content-type", 415))}, NotMet, 0, 1},
		{"JSON in", Test{}, []*call{rc(func(r *audit.Record) { r.ContentType = ptr("application/fhir+json") })}, NotExercised, 0, 0},
		{"no Content-Type", Test{}, []*call{rc()}, NotExercised, 0, 0},
		{"v1 record with headers is not read", Test{}, []*call{rc(xmlIn, func(r *audit.Record) { r.V = 0 })}, NotExercised, 0, 0},
	})
}

func TestCheckFormatJSON(t *testing.T) {
	format := func(f string) func(*audit.Record) {
		return func(r *audit.Record) { r.Target += "?_format=" + f; r.Accept = nil }
	}
	runChecks(t, "format-json", []checkCase{
		{"_format=json, no Accept", Test{}, []*call{rc(format("json"))}, Met, 1, 0},
		{"_format=application/fhir+json escaped", Test{}, []*call{rc(format("application/fhir%2Bjson"))}, Met, 1, 0},
		{"with JSON Content-Type", Test{}, []*call{rc(format("json"), func(r *audit.Record) { r.ContentType = ptr("application/fhir+json") })}, Met, 1, 0},
		{"with XML Content-Type", Test{}, []*call{rc(format("json"), func(r *audit.Record) { r.ContentType = ptr("application/fhir+xml") })}, NotExercised, 0, 0},
		{"Accept present", Test{}, []*call{rc(format("json"), func(r *audit.Record) { r.Accept = ptr("application/fhir+json") })}, NotExercised, 0, 0},
		{"_format=xml", Test{}, []*call{rc(format("xml"))}, NotExercised, 0, 0},
		{"answered 400", Test{}, []*call{rc(format("json"), status(400))}, NotMet, 0, 1},
		{"v1 record (Accept unknown, not absent)", Test{}, []*call{rc(v1, format("json"))}, NotExercised, 0, 0},
	})
}

func TestCheckRefusal403(t *testing.T) {
	// The provider's 403 is in the transaction; the audit record says forwarded, 200.
	joined := rc()
	joined.tx = &audit.Transaction{TraceID: joined.rec.TraceID, Status: 403, Fault: "no-consent"}
	runChecks(t, "refusal-403", []checkCase{
		{"403 from the transaction (v2: no code recorded)", Test{}, []*call{joined}, Met, 1, 0},
		{"the SSP's own 403 is not NO_PATIENT_CONSENT", Test{}, []*call{rc(refused("receiver", 403))}, NotExercised, 0, 1},
		{"no 403", Test{}, []*call{rc(), rc(status(404))}, NotExercised, 0, 0},
		{"v1 record with 403", Test{}, []*call{rc(v1, status(403))}, Met, 1, 0},
		{"v3: the provider's NO_PATIENT_CONSENT", Test{}, []*call{v3tx(403, "NO_PATIENT_CONSENT", ""), v3tx(403, "ACCESS_DENIED", "")}, Met, 1, 0},
		{"v3: a 403 with another code", Test{}, []*call{v3tx(403, "ACCESS_DENIED", "")}, NotExercised, 0, 1},
	})
}

// v3tx is a version 3 call forwarded and answered status with the
// provider's code and content type.
func v3tx(status int, code, contentType string) *call {
	c := rc(func(r *audit.Record) { r.V = 3 })
	c.tx = &audit.Transaction{TraceID: c.rec.TraceID, Status: status, AuditSeq: c.seq, ProviderCode: code, RespContentType: contentType}
	return c
}

// TestCheckContentTypeAnswer holds TST-05/06 to the answer's Content-Type
// where the transaction records it (version 3), and to the status alone
// before.
func TestCheckContentTypeAnswer(t *testing.T) {
	xmlIn := func(r *audit.Record) { r.ContentType = ptr("application/fhir+xml") }
	withXML := func(ct string) *call {
		c := v3tx(200, "", ct)
		xmlIn(&c.rec)
		return c
	}
	runChecks(t, "accept-json-send-xml", []checkCase{
		{"answered JSON", Test{}, []*call{withXML("application/fhir+json;charset=utf-8")}, Met, 1, 0},
		{"answered XML", Test{}, []*call{withXML("application/fhir+xml")}, NotMet, 0, 1},
		{"v2: the status counts", Test{}, []*call{rc(xmlIn)}, Met, 1, 0},
	})
	format := func(ct string) *call {
		c := v3tx(200, "", ct)
		c.rec.Accept, c.rec.Target = nil, "/B82617/STU3/1/gpconnect/fhir/metadata?_format=json"
		return c
	}
	runChecks(t, "format-json", []checkCase{
		{"answered JSON", Test{}, []*call{format("application/fhir+json")}, Met, 1, 0},
		{"answered XML", Test{}, []*call{format("application/fhir+xml")}, NotMet, 0, 1},
	})
}

func TestCheckAuditItems(t *testing.T) {
	noODS := func(r *audit.Record) { r.JWT = &audit.JWT{Subject: "x", SDSUserID: "x", RoleProfileID: "x"} }
	noJWT := func(r *audit.Record) { r.JWT = nil }
	runChecks(t, "audit-items-ok", []checkCase{
		{"every item", Test{}, []*call{rc()}, Met, 1, 0},
		{"v1 record has them too", Test{}, []*call{rc(v1)}, Met, 1, 0},
		{"no ODS code", Test{}, []*call{rc(noODS)}, NotMet, 0, 1},
		{"no Ssp-To", Test{}, []*call{rc(func(r *audit.Record) { r.To = "" })}, NotMet, 0, 1},
		{"no JWT", Test{}, []*call{rc(noJWT)}, NotMet, 0, 1},
		{"only failures", Test{}, []*call{rc(refused("jwt", 400))}, NotExercised, 0, 0},
	})
	runChecks(t, "audit-items-error", []checkCase{
		{"refused 400 with every item", Test{}, []*call{rc(refused("jwt", 400))}, Met, 1, 0},
		{"forwarded, provider 404", Test{}, []*call{rc(status(404))}, Met, 1, 0},
		{"refused without JWT", Test{}, []*call{rc(refused("jwt", 400), noJWT)}, NotMet, 0, 1},
		{"only successes", Test{}, []*call{rc()}, NotExercised, 0, 0},
	})
}

func TestCheckJWT(t *testing.T) {
	unk := func(r *audit.Record) { r.JWT.SDSUserID, r.JWT.RoleProfileID = "UNK", "UNK" }
	failed := func(r *audit.Record) {
		r.Claims = []audit.ClaimVerdict{{Claim: "exp", Verdict: "failed", Reason: "expired"}}
	}
	notJudged := func(r *audit.Record) {
		r.Claims = append(r.Claims, audit.ClaimVerdict{Claim: "aud", Verdict: "not judged"})
	}
	runChecks(t, "jwt-smartcard", []checkCase{
		{"smartcard, every claim passed", Test{}, []*call{rc()}, Met, 1, 0},
		{"a claim failed", Test{}, []*call{rc(), rc(failed, refused("jwt", 400))}, NotMet, 1, 1},
		{"a claim not judged", Test{}, []*call{rc(notJudged)}, NotExercised, 0, 0},
		{"no smartcard", Test{}, []*call{rc(unk)}, NotExercised, 0, 0},
		{"role profile UNK", Test{}, []*call{rc(func(r *audit.Record) { r.JWT.RoleProfileID = "UNK" })}, NotExercised, 0, 0},
		{"v1 record has no verdicts", Test{}, []*call{rc(v1)}, NotExercised, 0, 0},
	})
	runChecks(t, "jwt-no-smartcard", []checkCase{
		{"UNK, every claim passed", Test{}, []*call{rc(unk)}, Met, 1, 0},
		{"smartcard only", Test{}, []*call{rc()}, NotExercised, 0, 0},
		{"a claim failed", Test{}, []*call{rc(unk), rc(failed)}, NotMet, 1, 1},
		{"v1 record", Test{}, []*call{rc(v1, unk)}, NotExercised, 0, 0},
	})
}

func TestCheckChunkedGzip(t *testing.T) {
	both := func(r *audit.Record) { r.TransferEncoding, r.AcceptEncoding = "chunked", ptr("GZIP, deflate") }
	runChecks(t, "chunked-gzip", []checkCase{
		{"chunked and gzip, 201", Test{}, []*call{rc(both, status(201))}, Met, 1, 0},
		{"chunked and gzip, 500", Test{}, []*call{rc(both, status(500))}, NotMet, 0, 1},
		{"gzip only", Test{}, []*call{rc(func(r *audit.Record) { r.AcceptEncoding = ptr("gzip") })}, NotExercised, 0, 0},
		{"chunked only", Test{}, []*call{rc(func(r *audit.Record) { r.TransferEncoding = "chunked" })}, NotExercised, 0, 0},
		{"v1 record", Test{}, []*call{rc(both, func(r *audit.Record) { r.V = 0 })}, NotExercised, 0, 0},
	})
}

func TestCheckSpineHeaders(t *testing.T) {
	reused := rc()
	reused.ambiguous = true
	logged := rc(func(r *audit.Record) {
		r.Reason = "interaction-route (logged, not enforced): Ssp-InteractionID does not match"
	})
	cases := []checkCase{
		{"every call good", Test{}, []*call{rc(), rc(v1)}, Met, 2, 0},
		{"reused trace ID", Test{}, []*call{rc(), reused}, NotMet, 1, 1},
		{"mismatch logged only", Test{}, []*call{logged}, NotMet, 1, 1},
		{"refused by jwt only", Test{}, []*call{rc(refused("jwt", 400))}, NotExercised, 0, 0},
		{"no calls", Test{}, nil, NotExercised, 0, 0},
	}
	for rule := range headerRules {
		cases = append(cases, checkCase{"refused by " + string(rule), Test{}, []*call{rc(), rc(refused(string(rule), 400))}, NotMet, 1, 1})
	}
	runChecks(t, "spine-headers", cases)
}

func TestCheckInteraction(t *testing.T) {
	slots := urn + "fhir:rest:search:slot-1"
	free := Test{Group: GroupAppointments, Interaction: slots, Expect: "ok", QueryHas: []string{"start", "status=free"}}
	lacks := Test{Group: GroupAppointments, Interaction: slots, Expect: "4xx", QueryLacks: []string{"status=free"}}
	notFound := Test{Group: GroupFoundations, Interaction: iaReadPatient, Expect: "404"}
	slot := func(q string) func(*audit.Record) {
		return func(r *audit.Record) { r.Interaction, r.Target = slots, "/B82617/STU3/1/gpconnect/fhir/Slot?"+q }
	}
	patient := func(r *audit.Record) { r.Interaction, r.Target = iaReadPatient, "/fhir/Patient/1" }
	runChecks(t, "interaction", []checkCase{
		{"slots with start and status=free, 200", free, []*call{rc(slot("start=ge2026-03-01&status=free"))}, Met, 1, 0},
		{"status=busy does not count", free, []*call{rc(slot("start=ge2026-03-01&status=busy"))}, NotExercised, 0, 0},
		{"no start", free, []*call{rc(slot("status=free"))}, NotExercised, 0, 0},
		{"right query, 500", free, []*call{rc(slot("start=x&status=free"), status(500))}, NotMet, 0, 1},
		{"right query, refused", free, []*call{rc(slot("start=x&status=free"), refused("jwt", 400))}, NotMet, 0, 1},
		{"other interaction", free, []*call{rc()}, NotExercised, 0, 0},
		{"without status=free, 422", lacks, []*call{rc(slot("start=x"), status(422))}, Met, 1, 0},
		{"without status=free, 200: error not exercised", lacks, []*call{rc(slot("start=x"))}, NotExercised, 0, 1},
		{"without status=free, 500 is not 4xx", lacks, []*call{rc(slot("start=x"), status(500))}, NotExercised, 0, 1},
		{"with status=free does not count", lacks, []*call{rc(slot("status=free"), status(422))}, NotExercised, 0, 0},
		{"patient 404", notFound, []*call{rc(patient, status(404))}, Met, 1, 0},
		{"patient 400 is not 404", notFound, []*call{rc(patient, status(400))}, NotExercised, 0, 1},
		{"patient 404 from the transaction", notFound, func() []*call {
			c := rc(patient)
			c.tx = &audit.Transaction{TraceID: c.rec.TraceID, Status: 404}
			return []*call{c}
		}(), Met, 1, 0},
		{"v1 record counts", notFound, []*call{rc(v1, patient, status(404))}, Met, 1, 0},
	})
}

// TestCatalogueChecksExist guards the catalogue: a Check name with no
// predicate would report not exercised for ever.
func TestCatalogueChecksExist(t *testing.T) {
	ids := map[string]bool{}
	for _, tt := range Catalogue() {
		_, jc := journalChecks[tt.Check]
		if _, ok := checks[tt.Check]; !ok && !jc {
			t.Errorf("%s: no check %q", tt.ID, tt.Check)
		}
		if ids[tt.ID] {
			t.Errorf("%s listed twice", tt.ID)
		}
		ids[tt.ID] = true
	}
	r := evaluate(Test{ID: "X", Check: "nope"}, []*call{rc()})
	if r.Result != NotExercised || !strings.Contains(r.Why, `"nope"`) {
		t.Errorf("unknown check: %+v", r)
	}
}

// TestEvidenceBounded checks the evidence list stops at maxEvidence.
func TestEvidenceBounded(t *testing.T) {
	var cs []*call
	for range maxEvidence + 3 {
		cs = append(cs, rc())
	}
	if r := evaluate(Test{ID: "X", Check: "tls-version"}, cs); len(r.Evidence) != maxEvidence {
		t.Errorf("%d evidence entries, want %d", len(r.Evidence), maxEvidence)
	}
}

// TestJoin checks the trace-ID join: a unique trace ID joins its
// transaction, whose status then counts; a reused one stays unjoined and
// ambiguous, and its own record's status stands.
func TestJoin(t *testing.T) {
	a := rc(func(r *audit.Record) { r.TraceID = "a" })
	b1 := rc(func(r *audit.Record) { r.TraceID = "b" })
	b2 := rc(func(r *audit.Record) { r.TraceID = "b"; r.Status = 200 })
	c := rc(func(r *audit.Record) { r.TraceID = "c" })
	txs := []audit.Transaction{
		{Time: t0, TraceID: "a", Status: 403},
		{Time: t0, TraceID: "b", Status: 500},
	}
	join([]*call{a, b1, b2, c}, txs)
	if a.tx == nil || a.status() != 403 || a.ambiguous {
		t.Errorf("unique trace: tx %v status %d ambiguous %v", a.tx, a.status(), a.ambiguous)
	}
	for _, x := range []*call{b1, b2} {
		if x.tx != nil || !x.ambiguous || x.status() != 200 {
			t.Errorf("reused trace: tx %v status %d ambiguous %v", x.tx, x.status(), x.ambiguous)
		}
	}
	if c.tx != nil || c.ambiguous || c.status() != 200 {
		t.Errorf("no transaction: tx %v ambiguous %v", c.tx, c.ambiguous)
	}
	e := evidence(Test{Group: GroupSpine}, b1, true)
	if !strings.Contains(strings.Join(e.Checked, "\n"), "could not be joined") {
		t.Errorf("evidence of a reused trace ID does not say so: %q", e.Checked)
	}
}
