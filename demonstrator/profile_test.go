package demonstrator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/viper"

	"sspemu/certs"
	"sspemu/demonstrator/demotest"
	"sspemu/fhir"
	"sspemu/fhir/fhirtest/profile"
	"sspemu/gpconnect"
)

// TestProfiles drives every practice of the default configuration (the
// config.yaml embedded in sspemu) over mutual TLS through every interaction
// the demonstrator answers, in JSON and in XML, and through one refusal of
// each GP Connect error code it produces, and checks every resource and
// OperationOutcome it answers with against the GP Connect 1.2.7 profiles
// (fhir/fhirtest/profile, reading ../shared/gpconnect-fhir or
// $GPCONNECT_FHIR_DIR). It fails listing each rule broken once, with how
// often and where first, so that a fix can be checked rule by rule.
func TestProfiles(t *testing.T) {
	set := profile.ForTestWithCore(t)
	practices := defaultConfigPractices(t)
	if len(practices) == 0 {
		t.Fatal("the default configuration has no practices")
	}

	pki := t.TempDir()
	if err := certs.Init(pki, false, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	serverCert, err := certs.LoadKeyPair(filepath.Join(pki, certs.ProviderFile), filepath.Join(pki, certs.ProviderKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	sspCert, err := certs.LoadKeyPair(filepath.Join(pki, certs.SSPClientFile), filepath.Join(pki, certs.SSPClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}

	d, err := New(Options{
		Practices: practices,
		Now:       func() time.Time { return profileNow },
		Demographics: func(nhs string) (PDSRecord, bool) {
			return PDSRecord{NHSNumber: nhs, Family: "PROFILE", Given: []string{"Tess"}, Gender: "female", BirthDate: "1990-01-31"}, nhs != profileNotOnPDS
		},
		// The one refusal no request can provoke on purpose: the practice
		// failing. The hook answers as the edge answers a store failure.
		Hook: func(_ context.Context, in Inbound) *gpconnect.Refusal {
			if in.TraceID == profileFailTrace {
				return &gpconnect.Refusal{Status: http.StatusInternalServerError, Code: gpconnect.CodeInternalServerError, Reason: "the practice failed"}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(d.Handler())
	srv.TLS = ServerTLSConfig(serverCert, pool, certs.SSPClientFQDN)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	r := &profileRun{
		set: set,
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{sspCert},
		}}},
		url:      srv.URL,
		findings: map[string]*profileFinding{},
		checked:  map[string]int{},
		codes:    map[string]bool{},
		accepted: map[string]int{},
		d:        d,
	}
	t.Cleanup(r.client.CloseIdleConnections)
	nhsInUse := map[string]bool{}
	for _, p := range practices {
		for _, pt := range p.seed().Patients {
			nhsInUse[pt.NHSNumber] = true
		}
	}
	r.newNHS = unusedNHSNumbers(nhsInUse)

	for _, p := range d.Practices() {
		for _, format := range []gpconnect.Format{gpconnect.FormatJSON, gpconnect.FormatXML} {
			t.Run(p.ODS+"/"+format.String(), func(t *testing.T) {
				r.journey(t, p, format)
				r.refusals(t, p, format)
			})
		}
	}

	// The checks were not vacuous: every kind of answer was checked against
	// its profile.
	for _, want := range []string{
		"CapabilityStatement", // GP Connect 1.2.7 has no profile for it
		"Bundle " + profile.SearchsetBundle,
		"OperationOutcome " + profile.OperationOutcome,
		"Patient " + profilePatient, "Practitioner " + profilePractitioner, "Organization " + profileOrganization,
		"Location " + profileLocation, "Slot " + profileSlot, "Schedule " + profileSchedule,
		"Appointment " + profileAppointment,
	} {
		if r.checked[want] == 0 {
			t.Errorf("no %s was checked", want)
		}
	}
	for _, code := range profileCodes {
		if !r.codes[code] {
			t.Errorf("no refusal with %s was checked", code)
		}
	}
	var counts []string
	for k, n := range r.checked {
		counts = append(counts, fmt.Sprintf("%6d %s", n, k))
	}
	sort.Strings(counts)
	t.Logf("%d exchanges; resources checked, by type and profile:\n%s", r.exchanges, strings.Join(counts, "\n"))
	var used []string
	for k := range r.checked {
		if _, p, ok := strings.Cut(k, " "); ok {
			used = append(used, p)
		}
	}
	for _, u := range set.Unchecked(used...) {
		t.Logf("not checked: %s %s: %s (%d elements)", u.Rule, u.Target, u.Reason, len(u.Elements))
	}
	for reason, n := range r.accepted {
		t.Logf("accepted %d times: %s", n, reason)
	}
	if len(r.findings) > 0 {
		t.Errorf("the practices' answers break %d rules of the GP Connect 1.2.7 profiles:\n%s", len(r.findings), r.report())
	}
}

// profileNow is the business and real clock of TestProfiles: a Monday
// morning in winter, before the surgeries open.
var profileNow = time.Date(2025, time.March, 10, 7, 30, 0, 0, time.UTC)

// profileFailTrace is the Ssp-TraceID for which the practice fails.
const profileFailTrace = "5f0c1d2e-0000-4000-8000-000000000500"

// profileNotOnPDS is the one NHS number the test's PDS does not hold; it
// holds everyone else with profileRegistration's demographics.
const profileNotOnPDS = "9990000050"

// profileConsumer is the default configuration's consumer ASID.
const profileConsumer = "200000000359"

// profileCodes are the GP Connect error codes the demonstrator answers
// with, each provoked by a refusal of refusals. ACCESS_DENIED and
// NO_PATIENT_CONSENT are not among them: the practices never refuse so;
// nor INVALID_IDENTIFIER_VALUE: an identifier without its value is a
// malformed parameter (INVALID_PARAMETER).
// The answer to an unsupported format is checked whatever its code.
var profileCodes = []string{
	gpconnect.CodeBadRequest, gpconnect.CodeInvalidIdentifierSystem, gpconnect.CodeInvalidPatientDemographics,
	gpconnect.CodeInvalidNHSNumber, gpconnect.CodePatientNotFound, gpconnect.CodePractitionerNotFound,
	gpconnect.CodeOrganisationNotFound, gpconnect.CodeNoRecordFound, gpconnect.CodeDuplicateRejected,
	gpconnect.CodeInvalidResource, gpconnect.CodeInvalidParameter, gpconnect.CodeReferenceNotFound,
	gpconnect.CodeInternalServerError, gpconnect.CodeNotImplemented,
}

// defaultConfigPractices reads the practices of the default configuration:
// config.yaml at the module root, which sspemu embeds.
func defaultConfigPractices(t *testing.T) []Practice {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := wd
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	var c Config
	if err := v.UnmarshalKey("demonstrator", &c); err != nil {
		t.Fatalf("config.yaml demonstrator: %v", err)
	}
	return c.PracticeList()
}

// unusedNHSNumbers yields valid NHS numbers (modulus 11) that no practice
// holds, for registrations.
func unusedNHSNumbers(inUse map[string]bool) func() string {
	next := 969_099_000
	return func() string {
		for ; ; next++ {
			s := strconv.Itoa(next)
			sum := 0
			for i := 0; i < 9; i++ {
				sum += int(s[i]-'0') * (10 - i)
			}
			check := (11 - sum%11) % 11
			if check == 10 {
				continue
			}
			n := s + strconv.Itoa(check)
			if !inUse[n] {
				inUse[n] = true
				next++
				return n
			}
		}
	}
}

// profileRun is TestProfiles' client and what it has found.
type profileRun struct {
	set       *profile.Set
	client    *http.Client
	url       string
	newNHS    func() string
	exchanges int
	findings  map[string]*profileFinding // by profile, element, rule
	checked   map[string]int             // "resourceType profile" → resources checked
	codes     map[string]bool            // the error codes of the refusals checked
	accepted  map[string]int             // problems let pass, by profileAccepted's reason
	d         *Demonstrator              // for the designated error patients, whose refusals are checked instead
}

// profileAccepted are the rules of the profiles that the demonstrator
// breaks because the GP Connect 1.2.7 specification requires it; they are
// counted and logged, not failed.
var profileAccepted = []struct {
	profile, element string
	rule             profile.Rule
	detail           string
	reason           string
}{{
	profile.SearchsetBundle, "Bundle.entry", profile.RuleCardinality, "entry: 0 present, min 1",
	"GPConnect-Searchset-Bundle-1 makes Bundle.entry 1..*, but the specification's searches return \"zero or more\" " +
		"resources in a searchset Bundle and finding none is not an error (Find a patient, Find a practitioner, " +
		"Search for free slots, Retrieve a patient's appointments): a search that finds nothing answers a Bundle without entry",
}}

func profileAcceptedReason(p profile.Problem) string {
	for _, a := range profileAccepted {
		if p.Profile == a.profile && p.Element == a.element && p.Rule == a.rule && p.Detail == a.detail {
			return a.reason
		}
	}
	return ""
}

// profileFinding is one rule broken, however often.
type profileFinding struct {
	problem profile.Problem // the first occurrence
	where   string          // the exchange it was found in first
	count   int
	details map[string]bool // the distinct details, up to a few
}

// profileRequest is one request of TestProfiles.
type profileRequest struct {
	label       string
	method, rel string
	interaction string
	body        string
	edit        func(*http.Request) // changes the request after the defaults
	status      int                 // the status expected
	// orGone also accepts 404, which ends a walk through logical IDs:
	// exchange then returns nil.
	orGone bool
	// orPast also accepts 422 INVALID_PARAMETER, the answer to a read of
	// an appointment that started before today.
	orPast bool
	// codes are the error codes a refusal may answer with; none: any.
	codes []string
}

// exchange sends one request to practice p, asking for format, checks the
// status and error code expected, then checks the answer against the
// profiles, and returns it in JSON (nil when there is none).
func (r *profileRun) exchange(t *testing.T, p PracticeInfo, format gpconnect.Format, rq profileRequest) map[string]any {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, r.url+ServiceRootPath(p.ODS)+rq.rel, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ssp-TraceID", uuid.NewString())
	req.Header.Set("Ssp-From", profileConsumer)
	req.Header.Set("Ssp-To", p.ASID)
	req.Header.Set("Ssp-InteractionID", rq.interaction)
	req.Header.Set("Accept", format.ContentType())
	if rq.body != "" {
		req.Header.Set("Content-Type", gpconnect.MIMEJSON+";charset=utf-8")
	}
	if in, ok := gpconnect.Lookup(rq.interaction); ok {
		req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, p.BaseURL, profileNow).Encode())
	}
	if rq.edit != nil {
		rq.edit(req)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", rq.label, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", rq.label, err)
	}
	r.exchanges++
	where := fmt.Sprintf("%s %s %q (%s %s)", p.ODS, format, rq.label, rq.method, rq.rel)
	if len(raw) == 0 {
		if resp.StatusCode != rq.status {
			t.Errorf("%s: status %d without a body, want %d", where, resp.StatusCode, rq.status)
		}
		return nil
	}
	doc := raw
	if strings.Contains(resp.Header.Get("Content-Type"), "xml") {
		if doc, err = fhir.XMLToJSON(raw); err != nil {
			t.Errorf("%s: the XML answer does not convert to JSON: %v\n%s", where, err, raw)
			return nil
		}
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Errorf("%s: the answer is not a JSON object: %v\n%s", where, err, raw)
		return nil
	}
	gone := rq.orGone && resp.StatusCode == http.StatusNotFound
	past := rq.orPast && resp.StatusCode == http.StatusUnprocessableEntity && profileOutcomeCode(m) == gpconnect.CodeInvalidParameter
	if resp.StatusCode != rq.status && !gone && !past {
		t.Errorf("%s: status %d, want %d\n%s", where, resp.StatusCode, rq.status, doc)
	}
	if code := profileOutcomeCode(m); code != "" {
		if len(rq.codes) > 0 && !slices.Contains(rq.codes, code) {
			t.Errorf("%s: error code %q, want %s\n%s", where, code, strings.Join(rq.codes, " or "), doc)
		}
		r.codes[code] = true
	}
	res := r.set.Validate(doc)
	for _, c := range res.Checked {
		r.checked[strings.TrimSpace(c.ResourceType+" "+c.Profile)]++
	}
	for _, pr := range res.Problems {
		if reason := profileAcceptedReason(pr); reason != "" {
			r.accepted[reason]++
			continue
		}
		key := pr.Profile + "\x00" + pr.Element + "\x00" + string(pr.Rule)
		f := r.findings[key]
		if f == nil {
			f = &profileFinding{problem: pr, where: where, details: map[string]bool{}}
			r.findings[key] = f
		}
		f.count++
		if len(f.details) < 3 {
			f.details[pr.Detail] = true
		}
	}
	if gone {
		return nil
	}
	return m
}

// report lists the findings, by profile and element.
func (r *profileRun) report() string {
	list := make([]*profileFinding, 0, len(r.findings))
	for _, f := range r.findings {
		list = append(list, f)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].problem, list[j].problem
		if a.Profile != b.Profile {
			return a.Profile < b.Profile
		}
		if a.Element != b.Element {
			return a.Element < b.Element
		}
		return a.Rule < b.Rule
	})
	var b strings.Builder
	for _, f := range list {
		p := f.problem
		var details []string
		for d := range f.details {
			details = append(details, d)
		}
		sort.Strings(details)
		fmt.Fprintf(&b, "- %s [%s] %s: %s\n    %d times; first at %s, in %s\n",
			p.Element, profileShort(p.Profile), p.Rule, strings.Join(details, " | "), f.count, p.Path, f.where)
	}
	return b.String()
}

func profileShort(url string) string {
	if url == "" {
		return "no profile"
	}
	return url[strings.LastIndexByte(url, '/')+1:]
}

// profileOutcomeCode is the Spine error code of an OperationOutcome.
func profileOutcomeCode(m map[string]any) string {
	if m["resourceType"] != "OperationOutcome" {
		return ""
	}
	issues, _ := m["issue"].([]any)
	if len(issues) == 0 {
		return ""
	}
	issue, _ := issues[0].(map[string]any)
	details, _ := issue["details"].(map[string]any)
	codings, _ := details["coding"].([]any)
	if len(codings) == 0 {
		return ""
	}
	c, _ := codings[0].(map[string]any)
	code, _ := c["code"].(string)
	return code
}

// profileGet is a GET expected to succeed.
func profileGet(label, rel, interaction string) profileRequest {
	return profileRequest{label: label, method: http.MethodGet, rel: rel, interaction: interaction, status: http.StatusOK}
}

// profileWalk is a read of the next logical ID: 200, or 404 when there is
// none (that refusal is checked too).
func profileWalk(label, rel, interaction string) profileRequest {
	rq := profileGet(label, rel, interaction)
	rq.orGone = true
	return rq
}

// profileEntries returns the resources of a searchset Bundle.
func profileEntries(m map[string]any) []map[string]any {
	var out []map[string]any
	es, _ := m["entry"].([]any)
	for _, e := range es {
		em, _ := e.(map[string]any)
		if r, ok := em["resource"].(map[string]any); ok {
			out = append(out, r)
		}
	}
	return out
}

// profileIdentifier is the value of a resource's identifier of system.
func profileIdentifier(m map[string]any, system string) string {
	ids, _ := m["identifier"].([]any)
	for _, id := range ids {
		im, _ := id.(map[string]any)
		if im["system"] == system {
			v, _ := im["value"].(string)
			return v
		}
	}
	return ""
}

// journey reads everything a practice holds, searches it, registers a
// patient, and books, amends and cancels an appointment.
func (r *profileRun) journey(t *testing.T, p PracticeInfo, format gpconnect.Format) {
	x := func(rq profileRequest) map[string]any { return r.exchange(t, p, format, rq) }
	x(profileGet("capability statement", "/metadata", gpconnect.ReadMetadata))
	x(profileGet("read the organisation", "/Organization/1", gpconnect.ReadOrganization))
	x(profileGet("find the organisation", "/Organization?identifier="+systemODSCode+"|"+p.ODS, gpconnect.SearchOrganization))

	// Every patient, found by NHS number too, with their appointments.
	day := profileNow.Format(time.DateOnly)
	// A patient's appointments are searched from today: a range reaching
	// into the past is refused.
	window := "?start=ge" + day + "&start=le" + profileNow.AddDate(0, 0, 60).Format(time.DateOnly)
	var patients []string
	for i := 1; ; i++ {
		id := strconv.Itoa(i)
		if e, ok := r.d.designatedByID(p.ODS, id); ok {
			// A designated error patient: their refusals are checked.
			refused := func(rq profileRequest) profileRequest {
				rq.status, rq.codes = e.status, []string{e.code}
				return rq
			}
			x(refused(profileGet("read designated patient "+id, "/Patient/"+id, gpconnect.ReadPatient)))
			continue
		}
		pt := x(profileWalk("read patient "+id, "/Patient/"+id, gpconnect.ReadPatient))
		if pt == nil {
			break
		}
		patients = append(patients, id)
		if nhs := profileIdentifier(pt, systemNHSNumber); nhs != "" {
			x(profileGet("find patient "+id, "/Patient?identifier="+systemNHSNumber+"|"+nhs, gpconnect.SearchPatient))
		}
		x(profileGet("appointments of patient "+id, "/Patient/"+id+"/Appointment"+window, gpconnect.SearchPatientAppts))
	}
	if len(patients) == 0 {
		t.Fatal("the practice has no patients")
	}
	for i := 1; ; i++ {
		id := strconv.Itoa(i)
		pr := x(profileWalk("read practitioner "+id, "/Practitioner/"+id, gpconnect.ReadPractitioner))
		if pr == nil {
			break
		}
		if sds := profileIdentifier(pr, systemSDSUserID); sds != "" {
			x(profileGet("find practitioner "+id, "/Practitioner?identifier="+systemSDSUserID+"|"+sds, gpconnect.SearchPractitioner))
		}
	}
	for i := 1; x(profileWalk("read location "+strconv.Itoa(i), "/Location/"+strconv.Itoa(i), gpconnect.ReadLocation)) != nil; i++ {
	}
	for i := 1; ; i++ {
		rq := profileWalk("read appointment "+strconv.Itoa(i), "/Appointment/"+strconv.Itoa(i), gpconnect.ReadAppointment)
		rq.orPast = true // the seed's past appointments are refused, and the refusal checked
		if x(rq) == nil {
			break
		}
	}

	// Free slots over the longest range a search may ask for, with every
	// include.
	search := "/Slot?start=ge" + day + "&end=le" + profileNow.AddDate(0, 0, 13).Format(time.DateOnly) +
		"&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location" +
		"&searchFilter=" + systemODSCode + "|Y12345"
	found := profileEntries(x(profileGet("search free slots", search, gpconnect.SearchSlot)))
	x(profileGet("search free slots without includes", "/Slot?start=ge"+day+"&end=le"+day+"&status=free&_include=Slot:schedule", gpconnect.SearchSlot))

	// Book one (a different one in each format), read, amend, cancel.
	var slot map[string]any
	locationOf := map[string]string{}
	for _, res := range found {
		if res["resourceType"] != "Schedule" {
			continue
		}
		actors, _ := res["actor"].([]any)
		for _, a := range actors {
			ref, _ := a.(map[string]any)["reference"].(string)
			if strings.HasPrefix(ref, "Location/") {
				locationOf["Schedule/"+res["id"].(string)] = ref
			}
		}
	}
	skip := 3 * int(format)
	for _, res := range found {
		if res["resourceType"] == "Slot" {
			if skip == 0 {
				slot = res
				break
			}
			skip--
		}
	}
	if slot == nil {
		t.Fatal("no free slot to book")
	}
	sched, _ := slot["schedule"].(map[string]any)["reference"].(string)
	patient := "Patient/" + patients[0]
	booking := demotest.JSON(demotest.Booking(slot, patient, locationOf[sched], profileNow))
	appt := x(profileRequest{label: "book", method: http.MethodPost, rel: "/Appointment", interaction: gpconnect.CreateAppointment,
		body: booking, status: http.StatusCreated})
	id, _ := appt["id"].(string)
	if id == "" {
		t.Fatalf("the booking has no id: %v", appt)
	}
	x(profileRequest{label: "book the same slot again", method: http.MethodPost, rel: "/Appointment", interaction: gpconnect.CreateAppointment,
		body: booking, status: http.StatusConflict, codes: []string{gpconnect.CodeDuplicateRejected}})
	x(profileGet("read the booking", "/Appointment/"+id, gpconnect.ReadAppointment))
	appt["comment"] = "Amended comment."
	amended := x(profileRequest{label: "amend", method: http.MethodPut, rel: "/Appointment/" + id, interaction: gpconnect.UpdateAppointment,
		body: profileJSON(t, appt), status: http.StatusOK})
	exts, _ := amended["extension"].([]any)
	amended["status"] = "cancelled"
	amended["extension"] = append(exts, map[string]any{"url": extCancellationReason, "valueString": "Patient no longer needs it."})
	x(profileRequest{label: "cancel", method: http.MethodPut, rel: "/Appointment/" + id, interaction: gpconnect.CancelAppointment,
		body: profileJSON(t, amended), status: http.StatusOK})
	x(profileGet("read the cancelled booking", "/Appointment/"+id, gpconnect.ReadAppointment))
	x(profileGet("appointments of the patient booked", "/"+patient+"/Appointment"+window, gpconnect.SearchPatientAppts))

	// Register a new patient, then find and read them.
	nhs := r.newNHS()
	reg := x(profileRequest{label: "register a patient", method: http.MethodPost, rel: "/Patient/$gpc.registerpatient",
		interaction: gpconnect.RegisterPatient, body: profileRegistration(nhs), status: http.StatusOK})
	x(profileRequest{label: "register the same patient again", method: http.MethodPost, rel: "/Patient/$gpc.registerpatient",
		interaction: gpconnect.RegisterPatient, body: profileRegistration(nhs), status: http.StatusConflict, codes: []string{gpconnect.CodeDuplicateRejected}})
	x(profileGet("find the registered patient", "/Patient?identifier="+systemNHSNumber+"|"+nhs, gpconnect.SearchPatient))
	if ps := profileEntries(reg); len(ps) == 1 {
		if rid, ok := ps[0]["id"].(string); ok {
			x(profileGet("read the registered patient", "/Patient/"+rid, gpconnect.ReadPatient))
		}
	} else {
		t.Errorf("the registration answered %d resources, want the patient", len(ps))
	}
}

// refusals provokes each GP Connect error code the demonstrator answers
// with, and checks each OperationOutcome.
func (r *profileRun) refusals(t *testing.T, p PracticeInfo, format gpconnect.Format) {
	x := func(rq profileRequest) map[string]any { return r.exchange(t, p, format, rq) }
	refuse := func(label, method, rel, interaction, body string, status int, code string, edit func(*http.Request)) {
		var codes []string
		if code != "" {
			codes = []string{code}
		}
		x(profileRequest{label: label, method: method, rel: rel, interaction: interaction, body: body, status: status, codes: codes, edit: edit})
	}
	get := http.MethodGet
	refuse("no Ssp-TraceID", get, "/metadata", gpconnect.ReadMetadata, "", 400, gpconnect.CodeBadRequest,
		func(r *http.Request) { r.Header.Del("Ssp-TraceID") })
	refuse("DELETE", http.MethodDelete, "/Patient/1", gpconnect.ReadPatient, "", 405, gpconnect.CodeBadRequest, nil)
	refuse("expired JWT", get, "/metadata", gpconnect.ReadMetadata, "", 400, gpconnect.CodeBadRequest, func(r *http.Request) {
		in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
		r.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, p.BaseURL, profileNow.Add(-time.Hour)).Encode())
	})
	refuse("an unknown path", get, "/Patients/1", gpconnect.ReadPatient, "", 404, gpconnect.CodeNoRecordFound, nil)
	// Whatever code the answer to an unsupported format has, it must be
	// one of Spine-ErrorOrWarningCode-1.
	refuse("Accept text/plain", get, "/metadata", gpconnect.ReadMetadata, "", 415, "",
		func(r *http.Request) { r.Header.Set("Accept", "text/plain") })
	refuse("the structured record", http.MethodPost, "/Patient/$gpc.getstructuredrecord", gpconnect.GetStructuredRecord,
		`{"resourceType":"Parameters"}`, 501, gpconnect.CodeNotImplemented, nil)
	refuse("the practice fails", get, "/metadata", gpconnect.ReadMetadata, "", 500, gpconnect.CodeInternalServerError,
		func(r *http.Request) { r.Header.Set("Ssp-TraceID", profileFailTrace) })

	refuse("an unknown patient", get, "/Patient/99999", gpconnect.ReadPatient, "", 404, gpconnect.CodePatientNotFound, nil)
	refuse("an unknown practitioner", get, "/Practitioner/99999", gpconnect.ReadPractitioner, "", 404, gpconnect.CodePractitionerNotFound, nil)
	refuse("an unknown organisation", get, "/Organization/99999", gpconnect.ReadOrganization, "", 404, gpconnect.CodeOrganisationNotFound, nil)
	refuse("an unknown location", get, "/Location/99999", gpconnect.ReadLocation, "", 404, gpconnect.CodeNoRecordFound, nil)
	refuse("an unknown appointment", get, "/Appointment/99999", gpconnect.ReadAppointment, "", 404, gpconnect.CodeNoRecordFound, nil)
	refuse("an invalid NHS number", get, "/Patient?identifier="+systemNHSNumber+"|1234567890", gpconnect.SearchPatient, "",
		400, gpconnect.CodeInvalidNHSNumber, nil)
	refuse("another identifier system", get, "/Patient?identifier=https://example.org/id|9690937286", gpconnect.SearchPatient, "",
		400, gpconnect.CodeInvalidIdentifierSystem, nil)
	refuse("an empty identifier value", get, "/Practitioner?identifier="+systemSDSUserID+"|", gpconnect.SearchPractitioner, "",
		422, gpconnect.CodeInvalidParameter, nil)
	refuse("a registration PDS does not hold", http.MethodPost, "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient,
		profileRegistration(profileNotOnPDS), 400, gpconnect.CodeInvalidPatientDemographics, nil)
	refuse("busy slots", get, "/Slot?start=ge2025-03-10&end=le2025-03-11&status=busy&_include=Slot:schedule", gpconnect.SearchSlot, "",
		422, gpconnect.CodeInvalidParameter, nil)

	slot := map[string]any{"id": "1", "start": "2025-03-20T10:00:00+00:00", "end": "2025-03-20T10:15:00+00:00"}
	refuse("a booking of an unknown patient", http.MethodPost, "/Appointment", gpconnect.CreateAppointment,
		demotest.JSON(demotest.Booking(slot, "Patient/99999", "Location/1", profileNow)), 422, gpconnect.CodeReferenceNotFound, nil)
	refuse("a booking with a member STU3 lacks", http.MethodPost, "/Appointment", gpconnect.CreateAppointment,
		strings.Replace(demotest.JSON(demotest.Booking(slot, "Patient/1", "Location/1", profileNow)), `"status"`, `"colour":"blue","status"`, 1),
		422, gpconnect.CodeInvalidResource, nil)
}

// profileRegistration is a $gpc.registerpatient body for nhs.
func profileRegistration(nhs string) string {
	return `{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{
		"resourceType":"Patient",
		"meta":{"profile":["` + profilePatient + `"]},
		"identifier":[{"system":"` + systemNHSNumber + `","value":"` + nhs + `"}],
		"name":[{"use":"official","family":"PROFILE","given":["Tess"]}],
		"gender":"female","birthDate":"1990-01-31"}}]}`
}

func profileJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
