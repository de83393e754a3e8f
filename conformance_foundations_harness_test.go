package main

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/certs"
	"sspemu/demonstrator"
	"sspemu/fhir"
	"sspemu/fhir/fhirtest"
	"sspemu/fhir/fhirtest/profile"
	"sspemu/gpconnect"
	"sspemu/pds"
)

// The harness of the Foundations conformance rows
// (conformance_foundations_test.go): one running sspemu with the embedded
// configuration (listeners on free ports), called as the NHS provider
// conformance suite calls a provider, with the suite's default JWT and
// headers, through the SSP over mutual TLS (Security and Http, which the
// suite sends to the provider directly, go straight to the demonstrator with
// the SSP's client certificate). Names are prefixed fdn so they stay apart
// from other conformance harnesses of this package.

// fdnConsumerASID is the suite's consumerASID (App.config), also sspemu's
// default consumer.
const fdnConsumerASID = "200000000359"

// fdnStack is the running stack and what the rows know of it.
type fdnStack struct {
	st        *stack
	cfg       Config
	consumer  *http.Client // consumer.pem, to the SSP
	sspClient *http.Client // ssp-client.pem, to the demonstrator
	demoAddr  string       // host:port of the demonstrator
	practices []*fdnPractice
	xml       *fdnXMLDocs
	profiles  *fdnProfiles
}

// fdnPractice is one practice with the suite's data names resolved against
// its seed.
type fdnPractice struct {
	ods, asid string
	root      string // service root URL, as the registry gives it
	seed      *demonstrator.Seed

	mu   sync.Mutex
	next int // next PDS patient to register
	pool []pds.Patient
}

// startFdnStack starts the stack once for all the Foundations features.
func startFdnStack(t *testing.T) *fdnStack {
	t.Helper()
	demoPort := freeLoopbackPort(t)
	st, cfg := startTestStack(t, spineConfig(t, demoPort, nil))
	pki := cfg.PKIDir()
	pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	client := func(cert, key string) *http.Client {
		pair, err := certs.LoadKeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig:    &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableCompression: true, // so that gzip is only what a row asks for
		}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	s := &fdnStack{
		st: st, cfg: cfg,
		consumer:  client(filepath.Join(pki, certs.ConsumerFile), filepath.Join(pki, certs.ConsumerKeyFile)),
		sspClient: client(cfg.SSP.ClientCert, cfg.SSP.ClientKey),
		demoAddr:  "localhost:" + strconv.Itoa(demoPort),
		xml:       &fdnXMLDocs{seen: map[string]bool{}},
		profiles:  &fdnProfiles{set: profile.ForTestWithCore(t), findings: map[string]*fdnFinding{}},
	}
	table := st.registry.Load()
	for _, p := range cfg.Demonstrator.PracticeList() {
		sys, ok := table.System(p.ASID)
		if !ok {
			t.Fatalf("practice %s has no registry entry", p.ODS)
		}
		seed := p.Seed
		if seed == nil {
			seed = demonstrator.DefaultSeed()
		}
		s.practices = append(s.practices, &fdnPractice{ods: p.ODS, asid: p.ASID, root: sys.Endpoint, seed: seed, pool: pds.Unregistered()})
	}
	if len(s.practices) < 2 {
		t.Fatalf("the embedded configuration has %d practices, want at least 2", len(s.practices))
	}
	t.Cleanup(func() {
		s.xml.validate(t)
		s.profiles.report(t)
	})
	return s
}

// nextToRegister is a PDS patient not yet registered at the practice: the
// suite's "I get the next Patient to register".
func (p *fdnPractice) nextToRegister(t *testing.T) pds.Patient {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= len(p.pool) {
		t.Fatalf("%s: all %d PDS patients to register are registered", p.ods, len(p.pool))
	}
	p.next++
	return p.pool[p.next-1]
}

// The suite's data names, resolved against the practice's seed: patientN
// is the N-th seed patient (logical ID N), the others the first seed patient
// in each state.
func (p *fdnPractice) patientNHS(n int) string { return p.seed.Patients[n-1].NHSNumber }

func (p *fdnPractice) patientWhere(t *testing.T, what string, match func(demonstrator.SeedPatient) bool) (id, nhs string) {
	t.Helper()
	for i, pt := range p.seed.Patients {
		if match(pt) {
			return strconv.Itoa(i + 1), pt.NHSNumber
		}
	}
	t.Fatalf("%s: no %s patient in the seed", p.ods, what)
	return "", ""
}

func (p *fdnPractice) deceased(t *testing.T) (string, string) {
	return p.patientWhere(t, "deceased", func(s demonstrator.SeedPatient) bool { return s.Deceased != "" })
}

func (p *fdnPractice) sensitive(t *testing.T) (string, string) {
	return p.patientWhere(t, "sensitive", func(s demonstrator.SeedPatient) bool { return s.Sensitive })
}

func (p *fdnPractice) inactive(t *testing.T) (string, string) {
	return p.patientWhere(t, "inactive", func(s demonstrator.SeedPatient) bool { return s.Inactive })
}

func (p *fdnPractice) notOnPDS(t *testing.T) (string, string) {
	return p.patientWhere(t, "never traced", func(s demonstrator.SeedPatient) bool { return s.NotOnPDS })
}

// noConsent is the patient who dissented from sharing their record: the
// seeds put them last.
func (p *fdnPractice) noConsent(t *testing.T) (string, string) {
	last := p.seed.Patients[len(p.seed.Patients)-1]
	if last.Deceased != "" || last.Sensitive || last.Inactive || last.NotOnPDS {
		t.Fatalf("%s: the last seed patient is not the dissenting one", p.ods)
	}
	return strconv.Itoa(len(p.seed.Patients)), last.NHSNumber
}

// practitionerWithRoles is the first seed practitioner with k SDS role
// profiles: its logical ID and SDS user ID.
func (p *fdnPractice) practitionerWithRoles(t *testing.T, k int) (id, sds string) {
	t.Helper()
	for i, pr := range p.seed.Practitioners {
		n := len(pr.MoreRoleProfileIDs)
		if pr.SDSRoleProfileID != "" {
			n++
		}
		if n == k {
			return strconv.Itoa(i + 1), pr.SDSUserID
		}
	}
	t.Fatalf("%s: no seed practitioner with %d role profiles", p.ods, k)
	return "", ""
}

// fdnRun is one practice in one wire format.
type fdnRun struct {
	s      *fdnStack
	p      *fdnPractice
	format string // json or xml

	// sent is the Patient a registration row sent, from (the PDS patient
	// drawn for it), for the checks of its answer.
	sent map[string]any
	from pds.Patient
}

func fdnMIME(format string) string {
	if format == "xml" {
		return gpconnect.MIMEXML
	}
	return gpconnect.MIMEJSON
}

// fdnCall is one request. Empty fields take the suite's defaults for the
// run: Accept and (with a body) Content-Type in the run's format, the
// interaction's JWT scope, the practice's ASID.
type fdnCall struct {
	method, rel, interaction string
	body                     string // JSON; sent in the Content-Type's format
	// accept and contentType are a format ("json" or "xml"), a MIME type,
	// or "-" for none; format adds _format=<MIME> to the query.
	accept, contentType, format string
	interactionHeader           string // Ssp-InteractionID as sent, when not the interaction's ID
	to                          string // Ssp-To, when not the practice's
	scope                       string // requested_scope, when not the interaction's
	jwt                         func(claims map[string]any)
	authorization               string // the whole header, when not the suite's JWT
	header                      map[string]string
	direct                      bool         // to the demonstrator with the SSP's certificate, not through the SSP
	client                      *http.Client // instead of the consumer's (or, direct, the SSP's)
}

// fdnAnswer is a response as the rows read it.
type fdnAnswer struct {
	status int
	header http.Header
	raw    []byte         // the body, decompressed
	format string         // json or xml, from Content-Type; "" for another type
	res    map[string]any // the body as JSON, when FHIR
	tls    *tls.ConnectionState
}

func fdnResolveMIME(v, def string) string {
	switch v {
	case "":
		return fdnMIME(def)
	case "-":
		return ""
	case "json", "xml":
		return fdnMIME(v)
	}
	return v
}

// do sends c and reads the answer; XML answers are kept for the schema
// check.
func (r *fdnRun) do(t *testing.T, c fdnCall) *fdnAnswer {
	t.Helper()
	a, err := r.send(t, c)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.rel, err)
	}
	return a
}

// send is do that returns the transport's error, for the rows where the
// connection itself is refused.
func (r *fdnRun) send(t *testing.T, c fdnCall) (*fdnAnswer, error) {
	t.Helper()
	in, ok := gpconnect.Lookup(c.interaction)
	if !ok {
		t.Fatalf("no interaction %s", c.interaction)
	}
	if c.method == "" {
		c.method = in.Method
	}
	rel := c.rel
	if c.format != "" {
		sep := "?"
		if strings.Contains(rel, "?") {
			sep = "&"
		}
		rel += sep + "_format=" + fdnResolveMIME(c.format, r.format)
	}
	var body io.Reader
	ct := fdnResolveMIME(c.contentType, r.format)
	if c.body != "" {
		b := []byte(c.body)
		if ct == gpconnect.MIMEXML {
			var err error
			if b, err = fhir.JSONToXML(b); err != nil {
				t.Fatalf("the request body does not convert to XML: %v\n%s", err, c.body)
			}
		}
		body = bytes.NewReader(b)
	}
	url := "https://" + r.s.st.addrs["ssp"] + "/" + r.p.root + rel
	client := r.s.consumer
	if c.direct {
		url = "https://" + r.s.demoAddr + demonstrator.ServiceRootPath(r.p.ods) + rel
		client = r.s.sspClient
	}
	if c.client != nil {
		client = c.client
	}
	req, err := http.NewRequest(c.method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	h := req.Header
	h.Set("Ssp-TraceID", uuid.NewString())
	h.Set("Ssp-From", fdnConsumerASID)
	h.Set("Ssp-To", r.p.asid)
	if c.to != "" {
		h.Set("Ssp-To", c.to)
	}
	h.Set("Ssp-InteractionID", in.ID)
	if c.interactionHeader != "" {
		h.Set("Ssp-InteractionID", c.interactionHeader)
	}
	if c.authorization != "" {
		h.Set("Authorization", c.authorization)
	} else {
		scope := in.Scope
		if c.scope != "" {
			scope = c.scope
		}
		claims := fdnSuiteClaims(scope, time.Now())
		if c.jwt != nil {
			c.jwt(claims)
		}
		h.Set("Authorization", "Bearer "+fdnEncodeJWT(t, claims))
	}
	if a := fdnResolveMIME(c.accept, r.format); a != "" {
		h.Set("Accept", a)
	}
	if c.body != "" && ct != "" {
		h.Set("Content-Type", ct+";charset=utf-8")
	}
	for k, v := range c.header {
		h.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	return r.read(t, c, rel, resp), nil
}

func (r *fdnRun) read(t *testing.T, c fdnCall, rel string, resp *http.Response) *fdnAnswer {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s %s: Content-Encoding gzip, but %v", c.method, rel, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s %s: the gzip body: %v", c.method, rel, err)
		}
	}
	a := &fdnAnswer{status: resp.StatusCode, header: resp.Header, raw: raw, tls: resp.TLS}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	switch strings.TrimSpace(mt) {
	case gpconnect.MIMEJSON:
		a.format = "json"
	case gpconnect.MIMEXML:
		a.format = "xml"
	}
	if len(raw) == 0 || a.format == "" {
		return a
	}
	js := raw
	if a.format == "xml" {
		r.s.xml.add(raw)
		if js, err = fhir.XMLToJSON(raw); err != nil {
			t.Fatalf("%s %s: the XML answer does not read: %v\n%s", c.method, rel, err, raw)
		}
	}
	if err := json.Unmarshal(js, &a.res); err != nil {
		t.Fatalf("%s %s: the answer is not JSON: %v\n%s", c.method, rel, err, js)
	}
	r.s.profiles.check(t.Name(), a.res, js)
	return a
}

// fdnSuiteClaims is the suite's default JWT payload (JwtHelper, FhirHelper):
// the legacy aud, its consumer URL, device, organisation and practitioner.
func fdnSuiteClaims(scope string, now time.Time) map[string]any {
	iat := now.Add(-2 * time.Second).Unix()
	return map[string]any{
		"iss":                "https://ConsumerSystemURL",
		"sub":                "1",
		"aud":                gpconnect.LegacyAudience,
		"exp":                iat + 300,
		"iat":                iat,
		"reason_for_request": "directcare",
		"requested_scope":    scope,
		"requesting_device": map[string]any{
			"resourceType": "Device",
			"identifier":   []any{map[string]any{"system": "GPConnectTestSystem", "value": "Client"}},
			"model":        "v1",
			"version":      "1.1",
		},
		"requesting_organization": map[string]any{
			"resourceType": "Organization",
			"identifier":   []any{map[string]any{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "GPCA0001"}},
			"name":         "GP Connect Assurance",
		},
		"requesting_practitioner": fdnSuitePractitioner("GCASDS0001", "112233445566", true),
	}
}

// fdnSuitePractitioner is the suite's requesting practitioner: an SDS user
// ID, and optionally a role profile and the consumer's user GUID.
func fdnSuitePractitioner(sdsUser, roleProfile string, guid bool) map[string]any {
	ids := []any{map[string]any{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": sdsUser}}
	if roleProfile != "" {
		ids = append(ids, map[string]any{"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": roleProfile})
	}
	if guid {
		ids = append(ids, map[string]any{"system": "https://consumersupplier.com/Id/user-guid", "value": "98ed4f78-814d-4266-8d5b-cde742f3093c"})
	}
	return map[string]any{
		"resourceType": "Practitioner",
		"id":           "1",
		"identifier":   ids,
		"name":         []any{map[string]any{"family": "AssurancePractitioner", "given": []any{"AssuranceTest"}, "prefix": []any{"Mr"}}},
	}
}

// fdnJWTHeader is the header .NET's new JwtHeader() writes: an unsecured
// JWT, so the token ends with a dot.
const fdnJWTHeader = `{"alg":"none","typ":"JWT"}`

func fdnEncodeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(fdnJWTHeader)) + "." + enc.EncodeToString(payload) + "."
}

// fdnXMLDocs keeps one XML answer of each kind (its resource type and, in
// a Bundle, its first entry's) for the STU3 schema check when the stack
// stops: checking every answer would run xmllint a thousand times, each
// reading the whole STU3 schema.
type fdnXMLDocs struct {
	mu   sync.Mutex
	seen map[string]bool
	docs [][]byte
}

func (x *fdnXMLDocs) add(doc []byte) {
	kind := ""
	for _, marker := range []string{"<", "<resource>"} {
		i := bytes.Index(doc, []byte(marker))
		if i < 0 {
			break
		}
		rest := bytes.TrimLeft(doc[i+len(marker):], " \n\t<")
		if j := bytes.IndexAny(rest, " >/"); j > 0 {
			kind += string(rest[:j]) + " "
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.seen[kind] {
		x.seen[kind] = true
		x.docs = append(x.docs, bytes.Clone(doc))
	}
}

func (x *fdnXMLDocs) validate(t *testing.T) {
	if t.Failed() {
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, doc := range x.docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fhirtest.ValidateXML(t, doc)
		}()
	}
	wg.Wait()
	t.Logf("%d kinds of XML answer checked against the STU3 schema", len(x.docs))
}

// fdnRow is one row of a feature's table, named after its scenario (and
// example). A row is a call and its checks, or a run of several calls.
type fdnRow struct {
	name string
	// fixed: the row sets its own formats, so it runs once per practice;
	// jsonOnly: its body cannot be written in XML (an unknown element or
	// resource type), as in the suite, which sends it in JSON.
	fixed, jsonOnly bool
	call            func(t *testing.T, r *fdnRun) fdnCall
	want            []fdnCheck
	run             func(t *testing.T, r *fdnRun)
}

// fdnCheck is one assertion on an answer.
type fdnCheck func(t *testing.T, r *fdnRun, a *fdnAnswer)

// feature runs a table at every practice, in JSON and in XML.
func (s *fdnStack) feature(t *testing.T, rows []fdnRow) {
	for _, p := range s.practices {
		for _, format := range []string{"json", "xml"} {
			for _, row := range rows {
				if (row.fixed || row.jsonOnly) && format == "xml" {
					continue
				}
				name := p.ods + "/" + format + "/" + row.name
				if row.fixed {
					name = p.ods + "/" + row.name
				}
				t.Run(name, func(t *testing.T) {
					r := &fdnRun{s: s, p: p, format: format}
					if row.run != nil {
						row.run(t, r)
						return
					}
					a := r.do(t, row.call(t, r))
					for _, c := range row.want {
						c(t, r, a)
					}
					if t.Failed() {
						t.Logf("answer %d %s", a.status, fdnTruncate(a.raw))
					}
				})
			}
		}
	}
}

func fdnTruncate(b []byte) string {
	if len(b) > 3000 {
		return string(b[:3000]) + "..."
	}
	return string(b)
}

// get is a GET of a relative path with the interaction's defaults.
func fdnGet(rel, interaction string) func(*testing.T, *fdnRun) fdnCall {
	return func(*testing.T, *fdnRun) fdnCall { return fdnCall{rel: rel, interaction: interaction} }
}

// --- JSON walking ---------------------------------------------------------

func fdnField(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func fdnStr(v any) string { s, _ := v.(string); return s }

func fdnList(v any) []any { l, _ := v.([]any); return l }

func fdnObj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// extensionsWith lists the extensions of m with url.
func fdnExtensions(m map[string]any, url string) []map[string]any {
	var out []map[string]any
	for _, e := range fdnList(m["extension"]) {
		if em := fdnObj(e); fdnStr(em["url"]) == url {
			out = append(out, em)
		}
	}
	return out
}

// resources lists an answer's resources: a Bundle's entries, or the
// resource itself.
func (a *fdnAnswer) resources(kind string) []map[string]any {
	if a.res == nil {
		return nil
	}
	if a.res["resourceType"] != "Bundle" {
		if a.res["resourceType"] == kind {
			return []map[string]any{a.res}
		}
		return nil
	}
	var out []map[string]any
	for _, e := range fdnList(a.res["entry"]) {
		if res := fdnObj(fdnObj(e)["resource"]); res["resourceType"] == kind {
			out = append(out, res)
		}
	}
	return out
}

func fdnIdentifiers(res map[string]any, system string) []map[string]any {
	var out []map[string]any
	for _, id := range fdnList(res["identifier"]) {
		if m := fdnObj(id); fdnStr(m["system"]) == system {
			out = append(out, m)
		}
	}
	return out
}

// --- checks ---------------------------------------------------------------

func fdnStatus(want int) fdnCheck {
	return func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
		t.Helper()
		if a.status != want {
			t.Errorf("status %d, want %d", a.status, want)
		}
	}
}

// outcome is the suite's "OperationOutcome resource with error code":
// status, meta.profile GPConnect-OperationOutcome-1, every issue an error
// with an issue type and one coding of Spine-ErrorOrWarningCode-1 with
// code and display; code "" accepts any code.
func fdnOutcome(wantStatus int, code string) fdnCheck {
	return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
		t.Helper()
		if a.status != wantStatus {
			t.Errorf("status %d, want %d", a.status, wantStatus)
		}
		o := a.res
		if o["resourceType"] != "OperationOutcome" {
			t.Fatalf("not an OperationOutcome (Content-Type %q)", a.header.Get("Content-Type"))
		}
		if p := fdnList(fdnField(o, "meta", "profile")); len(p) != 1 || p[0] != gpconnect.OutcomeProfile {
			t.Errorf("meta.profile %v, want [%s]", p, gpconnect.OutcomeProfile)
		}
		issues := fdnList(o["issue"])
		if len(issues) == 0 {
			t.Fatal("no issue")
		}
		for _, is := range issues {
			im := fdnObj(is)
			codings := fdnList(fdnField(im, "details", "coding"))
			if im["severity"] != "error" || fdnStr(im["code"]) == "" || len(codings) != 1 {
				t.Errorf("issue %v: want severity error, an issue type and one coding", im)
				continue
			}
			c := fdnObj(codings[0])
			if fdnStr(c["code"]) == "" || fdnStr(c["display"]) == "" || c["system"] != gpconnect.ProviderCodingSystem {
				t.Errorf("coding %v: want system %s, code and display", c, gpconnect.ProviderCodingSystem)
			}
			if code != "" && c["code"] != code {
				t.Errorf("code %v, want %s", c["code"], code)
			}
		}
		fdnNoStore(t, r, a)
	}
}

// failed is "the response status code should indicate failure" with an
// OperationOutcome of any code.
func fdnFailed(t *testing.T, r *fdnRun, a *fdnAnswer) {
	t.Helper()
	if a.status < 400 {
		t.Errorf("status %d, want a failure", a.status)
	}
	fdnOutcome(a.status, "")(t, r, a)
}

func fdnNoStore(t *testing.T, _ *fdnRun, a *fdnAnswer) {
	t.Helper()
	if !strings.Contains(a.header.Get("Cache-Control"), "no-store") {
		t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
	}
}

// inFormat is "the response should be the format FHIR JSON/XML"; "" is the
// run's format.
func fdnInFormat(format string) fdnCheck {
	return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
		t.Helper()
		want := format
		if want == "" {
			want = r.format
		}
		if a.format != want || a.res == nil {
			t.Errorf("answer in %q (Content-Type %q), want FHIR %s", a.format, a.header.Get("Content-Type"), want)
		}
		if ct := a.header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
			t.Errorf("Content-Type %q has no charset=utf-8", ct)
		}
	}
}

// searchset is a GPConnect-Searchset-Bundle-1 with n entries of kind (n < 0:
// any number), and no total (0..0 in the profile).
func fdnSearchset(kind string, n int) fdnCheck {
	return func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
		t.Helper()
		if a.status != http.StatusOK {
			t.Errorf("status %d, want 200", a.status)
		}
		b := a.res
		if b["resourceType"] != "Bundle" || b["type"] != "searchset" {
			t.Fatalf("not a searchset Bundle: %v %v", b["resourceType"], b["type"])
		}
		if p := fdnList(fdnField(b, "meta", "profile")); len(p) != 1 || p[0] != "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1" {
			t.Errorf("Bundle meta.profile %v", p)
		}
		if b["total"] != nil {
			t.Errorf("Bundle.total %v: the profile makes it 0..0", b["total"])
		}
		if got := len(a.resources(kind)); n >= 0 && (got != n || len(fdnList(b["entry"])) != n) {
			t.Errorf("%d %s entries (%d in all), want %d", got, kind, len(fdnList(b["entry"])), n)
		}
		for _, e := range fdnList(b["entry"]) {
			em := fdnObj(e)
			res := fdnObj(em["resource"])
			if want := "/" + fdnStr(res["resourceType"]) + "/" + fdnStr(res["id"]); !strings.HasSuffix(fdnStr(em["fullUrl"]), want) {
				t.Errorf("entry fullUrl %v does not end in %s", em["fullUrl"], want)
			}
		}
	}
}

// resource is the single resource of kind (read), with its id.
func fdnResource(kind, id string) fdnCheck {
	return func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
		t.Helper()
		if a.status != http.StatusOK {
			t.Errorf("status %d, want 200", a.status)
		}
		if a.res["resourceType"] != kind {
			t.Fatalf("resourceType %v, want %s", a.res["resourceType"], kind)
		}
		if id != "" && a.res["id"] != id {
			t.Errorf("id %v, want %s (the request's)", a.res["id"], id)
		}
	}
}

// metaOf checks each resource of kind: meta.profile exactly [profile],
// and a versionId.
func fdnMeta(kind, profile string) fdnCheck {
	return func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
		t.Helper()
		rs := a.resources(kind)
		if len(rs) == 0 {
			t.Fatalf("no %s", kind)
		}
		for _, res := range rs {
			if p := fdnList(fdnField(res, "meta", "profile")); len(p) != 1 || p[0] != profile {
				t.Errorf("%s/%v meta.profile %v, want [%s]", kind, res["id"], p, profile)
			}
			if fdnStr(fdnField(res, "meta", "versionId")) == "" {
				t.Errorf("%s/%v has no meta.versionId", kind, res["id"])
			}
			if fdnStr(res["id"]) == "" {
				t.Errorf("a %s has no id", kind)
			}
		}
	}
}

// etag is W/"<meta.versionId>".
func fdnETag(t *testing.T, _ *fdnRun, a *fdnAnswer) {
	t.Helper()
	if want := `W/"` + fdnStr(fdnField(a.res, "meta", "versionId")) + `"`; a.header.Get("ETag") != want || want == `W/""` {
		t.Errorf("ETag %q, want %s", a.header.Get("ETag"), want)
	}
}

// readable reads a reference (Kind/id) at the practice: the suite's
// "should be valid and resolvable".
func (r *fdnRun) readable(t *testing.T, ref string) {
	t.Helper()
	kind, id, ok := strings.Cut(ref, "/")
	interaction := map[string]string{
		"Patient": gpconnect.ReadPatient, "Practitioner": gpconnect.ReadPractitioner,
		"Organization": gpconnect.ReadOrganization, "Location": gpconnect.ReadLocation,
	}[kind]
	if !ok || interaction == "" || id == "" {
		t.Errorf("reference %q is not Patient, Practitioner, Organization or Location/<id>", ref)
		return
	}
	if a := r.do(t, fdnCall{rel: "/" + ref, interaction: interaction}); a.status != 200 || a.res["resourceType"] != kind || a.res["id"] != id {
		t.Errorf("reference %s does not read: %d", ref, a.status)
	}
}

// codingIn checks a CodeableConcept (or Coding) has exactly one coding of
// system with a code and a display.
func fdnCodingIn(t *testing.T, what string, cc map[string]any, system string) map[string]any {
	t.Helper()
	codings := fdnList(cc["coding"])
	if len(codings) != 1 {
		t.Errorf("%s: %d codings, want 1", what, len(codings))
		return nil
	}
	c := fdnObj(codings[0])
	if c["system"] != system || fdnStr(c["code"]) == "" || fdnStr(c["display"]) == "" {
		t.Errorf("%s: coding %v, want system %s with code and display", what, c, system)
	}
	return c
}

func fdnJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fdnContains(l []any, v string) bool {
	return slices.ContainsFunc(l, func(x any) bool { return x == v })
}

// fdnProfiles checks every answer of a practice against the GP Connect
// 1.2.7 profiles (fhir/fhirtest/profile), and reports each rule broken
// once, with how often and where first, when the stack stops. The SSP's
// own refusals (OperationOutcomes without meta.profile, the SSP's shape)
// are not a provider's and are not checked.
type fdnProfiles struct {
	set      *profile.Set
	mu       sync.Mutex
	checked  int
	findings map[string]*fdnFinding
}

type fdnFinding struct {
	problem profile.Problem
	where   string
	count   int
}

// fdnEmptySearchset is the rule the specification overrides: a search that
// finds nothing is a searchset Bundle without entry ("zero or more"),
// though GPConnect-Searchset-Bundle-1 makes Bundle.entry 1..*.
func fdnEmptySearchset(p profile.Problem) bool {
	return p.Profile == profile.SearchsetBundle && p.Element == "Bundle.entry" && p.Rule == profile.RuleCardinality &&
		p.Detail == "entry: 0 present, min 1"
}

func (x *fdnProfiles) check(where string, res map[string]any, doc []byte) {
	if res["resourceType"] == "OperationOutcome" && fdnField(res, "meta", "profile") == nil {
		return
	}
	problems := x.set.Check(doc)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.checked++
	for _, p := range problems {
		if fdnEmptySearchset(p) {
			continue
		}
		key := p.Profile + "\x00" + p.Element + "\x00" + string(p.Rule)
		f := x.findings[key]
		if f == nil {
			f = &fdnFinding{problem: p, where: where}
			x.findings[key] = f
		}
		f.count++
	}
}

func (x *fdnProfiles) report(t *testing.T) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t.Logf("%d answers checked against the GP Connect 1.2.7 profiles", x.checked)
	for _, f := range x.findings {
		t.Errorf("%s [%s] %s: %s\n\t%d times; first at %s, in %s", f.problem.Element, f.problem.Profile, f.problem.Rule,
			f.problem.Detail, f.count, f.problem.Path, f.where)
	}
}
