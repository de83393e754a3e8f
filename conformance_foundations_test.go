package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// TestConformanceFoundations runs sspemu's own Foundations conformance
// rows: one table per feature of the NHS provider conformance suite
// (nhsconnect/gpconnect-provider-testing, release/1.2.7: FHIR, Http, JWT,
// Security, SSP, PatientSearch, PatientRead, PatientRegister,
// OrganizationRead, OrganizationSearch, PractitionerRead,
// PractitionerSearch, LocationRead), each row named after its scenario and
// written from the facts the feature states, at every practice of the
// embedded configuration, in JSON and in XML. Where the suite and the GP
// Connect 1.2.7 specification disagree, the row follows the specification
// and says so (README, Conformance).
//
//	go test -run TestConformanceFoundations -v . | grep -c -- '--- PASS'
func TestConformanceFoundations(t *testing.T) {
	s := startFdnStack(t)
	for _, f := range []struct {
		name string
		rows []fdnRow
	}{
		{"FHIR", fdnFHIRRows()},
		{"Http", fdnHTTPRows()},
		{"JWT", fdnJWTRows()},
		{"PatientSearch", fdnPatientSearchRows()},
		{"PatientRead", fdnPatientReadRows()},
		{"PatientRegister", fdnPatientRegisterRows()},
		{"OrganizationRead", fdnOrganizationReadRows()},
		{"OrganizationSearch", fdnOrganizationSearchRows()},
		{"PractitionerRead", fdnPractitionerReadRows()},
		{"PractitionerSearch", fdnPractitionerSearchRows()},
		{"LocationRead", fdnLocationReadRows()},
	} {
		t.Run(f.name, func(t *testing.T) { s.feature(t, f.rows) })
	}
	t.Run("Security", func(t *testing.T) { fdnSecurity(t, s) })
	t.Run("SSP", func(t *testing.T) { fdnSSP(t, s) })
}

// --- FHIR.feature: the capability statement, content types, gzip ----------

var fdnCSProfiles = []string{
	"CareConnect-GPC-Patient-1", "CareConnect-GPC-Organization-1", "CareConnect-GPC-Practitioner-1",
	"CareConnect-GPC-PractitionerRole-1", "CareConnect-GPC-Location-1", "GPConnect-OperationOutcome-1",
	"GPConnect-Appointment-1", "GPConnect-Schedule-1", "GPConnect-Slot-1", "CareConnect-GPC-AllergyIntolerance-1",
	"CareConnect-GPC-Medication-1", "CareConnect-GPC-MedicationStatement-1", "CareConnect-GPC-MedicationRequest-1",
	"CareConnect-GPC-List-1", "GPConnect-StructuredRecord-Bundle-1",
}

const fdnStructuredOperation = "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1/_history/1.12"

// fdnCS checks the CapabilityStatement of the answer with fn.
func fdnCS(fn func(t *testing.T, cs map[string]any)) fdnCheck {
	return func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
		t.Helper()
		if a.status != 200 || a.res["resourceType"] != "CapabilityStatement" {
			t.Fatalf("%d %v, want a CapabilityStatement", a.status, a.res["resourceType"])
		}
		fn(t, a.res)
	}
}

func fdnCSResource(cs map[string]any, kind string) map[string]any {
	for _, rest := range fdnList(cs["rest"]) {
		for _, res := range fdnList(fdnObj(rest)["resource"]) {
			if fdnObj(res)["type"] == kind {
				return fdnObj(res)
			}
		}
	}
	return nil
}

func fdnCSOperation(cs map[string]any, name string) map[string]any {
	for _, rest := range fdnList(cs["rest"]) {
		for _, op := range fdnList(fdnObj(rest)["operation"]) {
			if fdnObj(op)["name"] == name {
				return fdnObj(op)
			}
		}
	}
	return nil
}

// fdnCSInteractions is the row "CapabilityStatement has <kind> with
// interactions", the suite's check made real (its own only finds the
// resource).
func fdnCSInteractions(kind string, interactions ...string) fdnCheck {
	return fdnCS(func(t *testing.T, cs map[string]any) {
		res := fdnCSResource(cs, kind)
		if res == nil {
			t.Fatalf("no %s resource", kind)
		}
		var have []string
		for _, in := range fdnList(res["interaction"]) {
			have = append(have, fdnStr(fdnObj(in)["code"]))
		}
		for _, want := range interactions {
			if !strings.Contains(","+strings.Join(have, ",")+",", ","+want+",") {
				t.Errorf("%s interactions %v lack %s", kind, have, want)
			}
		}
	})
}

func fdnFHIRRows() []fdnRow {
	meta := fdnGet("/metadata", gpconnect.ReadMetadata)
	negotiated := func(name, accept, format, want string) fdnRow {
		return fdnRow{name: name, fixed: true,
			call: func(*testing.T, *fdnRun) fdnCall {
				return fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, accept: accept, format: format}
			},
			want: []fdnCheck{fdnStatus(200), fdnInFormat(want), fdnResource("CapabilityStatement", "")}}
	}
	rows := []fdnRow{
		{name: "Fhir Get MetaData", call: meta, want: []fdnCheck{fdnInFormat(""), fdnNoStore, fdnCS(func(t *testing.T, cs map[string]any) {
			if cs["version"] != "1.2.7" {
				t.Errorf("version %v, want 1.2.7", cs["version"])
			}
		})}},
		{name: "Fhir Get Metadata and validate the conformance profile contains the acceptance of xml and json format", call: meta,
			want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
				if f := fdnList(cs["format"]); !fdnContains(f, gpconnect.MIMEJSON) || !fdnContains(f, gpconnect.MIMEXML) {
					t.Errorf("format %v lacks %s or %s", f, gpconnect.MIMEJSON, gpconnect.MIMEXML)
				}
			})}},
		{name: "Conformance profile provider software versions present", call: meta, want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
			if sw := fdnObj(cs["software"]); fdnStr(sw["name"]) == "" || fdnStr(sw["version"]) == "" {
				t.Errorf("software %v: want name and version", sw)
			}
		})}},
		{name: "Conformance profile supported fhir version", call: meta, want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
			if cs["fhirVersion"] != "3.0.1" {
				t.Errorf("fhirVersion %v, want 3.0.1", cs["fhirVersion"])
			}
		})}},
		{name: "Conformance profile supports the RegisterPatient operation", call: meta, want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
			if fdnCSOperation(cs, "gpc.registerpatient") == nil {
				t.Error("no operation gpc.registerpatient")
			}
		})}},
		{name: "Conformance profile supports the GetStructuredRecord operation", call: meta, want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
			if op := fdnCSOperation(cs, "gpc.getstructuredrecord"); fdnStr(fdnField(op, "definition", "reference")) != fdnStructuredOperation {
				t.Errorf("operation gpc.getstructuredrecord %v, want definition %s", op, fdnStructuredOperation)
			}
		})}},
		negotiated("Fhir Get Metadata with Accept JSON", "json", "", "json"),
		negotiated("Fhir Get Metadata with Accept XML", "xml", "", "xml"),
		negotiated("Fhir Get Metadata with _format JSON and no Accept", "-", "json", "json"),
		negotiated("Fhir Get Metadata with _format XML and no Accept", "-", "xml", "xml"),
		negotiated("Fhir Get Metadata with Accept XML and _format XML", "xml", "xml", "xml"),
		negotiated("Fhir Get Metadata with Accept XML and _format JSON", "xml", "json", "json"),
		negotiated("Fhir Get Metadata with Accept JSON and _format JSON", "json", "json", "json"),
		negotiated("Fhir Get Metadata with Accept JSON and _format XML", "json", "xml", "xml"),
		negotiated("Fhir Get Metadata with neither Accept nor _format answers JSON", "-", "", "json"),
		{name: "Fhir Get Metadata with gzip compression", call: func(*testing.T, *fdnRun) fdnCall {
			return fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Accept-Encoding": "gzip"}}
		}, want: []fdnCheck{fdnInFormat(""), fdnResource("CapabilityStatement", ""), func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
			if a.header.Get("Content-Encoding") != "gzip" {
				t.Errorf("Content-Encoding %q, want gzip", a.header.Get("Content-Encoding"))
			}
		}}},
		{name: "CapabilityStatement has Patient read and search-type", call: meta, want: []fdnCheck{fdnCSInteractions("Patient", "read", "search-type")}},
		{name: "CapabilityStatement has Organization read and search-type", call: meta, want: []fdnCheck{fdnCSInteractions("Organization", "read", "search-type")}},
		{name: "CapabilityStatement has Practitioner read and search-type", call: meta, want: []fdnCheck{fdnCSInteractions("Practitioner", "read", "search-type")}},
		{name: "CapabilityStatement has Location read", call: meta, want: []fdnCheck{fdnCSInteractions("Location", "read")}},
		{name: "CapabilityStatement has Appointment read, create, update and search-type", call: meta,
			want: []fdnCheck{fdnCSInteractions("Appointment", "read", "create", "update", "search-type")}},
		{name: "CapabilityStatement has Slot search-type and its includes", call: meta, want: []fdnCheck{fdnCSInteractions("Slot", "search-type"),
			fdnCS(func(t *testing.T, cs map[string]any) {
				inc := fdnList(fdnCSResource(cs, "Slot")["searchInclude"])
				for _, want := range []string{"Slot:schedule", "Schedule:actor:Practitioner", "Schedule:actor:Location", "Location:managingOrganization"} {
					if !fdnContains(inc, want) {
						t.Errorf("Slot searchInclude %v lacks %s", inc, want)
					}
				}
			})}},
	}
	for _, p := range fdnCSProfiles {
		url := "https://fhir.nhs.uk/STU3/StructureDefinition/" + p
		rows = append(rows, fdnRow{name: "GetMetaDataRead " + p, call: meta, want: []fdnCheck{fdnCS(func(t *testing.T, cs map[string]any) {
			n := 0
			for _, pr := range fdnList(cs["profile"]) {
				if fdnObj(pr)["reference"] == url {
					n++
				}
			}
			if n != 1 {
				t.Errorf("profile %s listed %d times, want once", url, n)
			}
			if fdnCSOperation(cs, "gpc.getstructuredrecord") == nil {
				t.Error("no operation gpc.getstructuredrecord")
			}
		})}})
	}
	return rows
}

// --- Http.feature: the provider refuses wrong endpoints and verbs ----------

func fdnHTTPRows() []fdnRow {
	direct := func(method, rel string) func(*testing.T, *fdnRun) fdnCall {
		return func(*testing.T, *fdnRun) fdnCall {
			return fdnCall{method: method, rel: rel, interaction: gpconnect.ReadMetadata, direct: true}
		}
	}
	return []fdnRow{
		{name: "Http GET from invalid endpoint", call: direct("GET", "/metadatas"), want: []fdnCheck{fdnFailed}},
		{name: "Http POST to invalid endpoint", call: direct("POST", "/metadatas"), want: []fdnCheck{fdnFailed}},
		{name: "Http PUT to invalid endpoint", call: direct("PUT", "/metadatas"), want: []fdnCheck{fdnFailed, fdnInFormat("")}},
		{name: "Http PATCH to valid endpoint", call: direct("PATCH", "/metadata"), want: []fdnCheck{fdnFailed}},
		{name: "Http DELETE to valid endpoint", call: direct("DELETE", "/metadata"), want: []fdnCheck{fdnFailed}},
		{name: "Http OPTIONS to valid endpoint", call: direct("OPTIONS", "/metadata"), want: []fdnCheck{fdnFailed}},
		{name: "Http incorrect case on url", call: direct("GET", "/Metadata"), want: []fdnCheck{fdnFailed}},
	}
}

// --- JWT.feature: the SSP and the provider read the same JWT rules ---------

func fdnJWTRows() []fdnRow {
	edit := func(fn func(c map[string]any)) func(*testing.T, *fdnRun) fdnCall {
		return func(*testing.T, *fdnRun) fdnCall {
			return fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata, jwt: fn}
		}
	}
	without := func(claim string) func(*testing.T, *fdnRun) fdnCall {
		return edit(func(c map[string]any) { delete(c, claim) })
	}
	times := func(iat, life int64) func(*testing.T, *fdnRun) fdnCall {
		return edit(func(c map[string]any) {
			now := time.Now().Unix()
			c["iat"], c["exp"] = now+iat, now+iat+life
		})
	}
	bad := []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}
	invalid := []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidResource)}
	ok := []fdnCheck{fdnResource("CapabilityStatement", "")}
	return []fdnRow{
		{name: "JWT - Bearer Token - not base 64 encoded", call: func(t *testing.T, _ *fdnRun) fdnCall {
			in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
			return fdnCall{rel: "/metadata", interaction: gpconnect.ReadMetadata,
				authorization: "Bearer " + fdnJWTHeader + "." + fdnJSON(t, fdnSuiteClaims(in.Scope, time.Now())) + "."}
		}, want: bad},
		{name: "JWT - Requesting System URL - missing", call: without("iss"), want: bad},
		{name: "JWT - Expiry Time - missing", call: without("exp"), want: bad},
		{name: "JWT - Expiry Time - greater than 300 seconds", call: times(-2, 301), want: bad},
		{name: "JWT - Expiry Time - less than 300 seconds", call: times(-2, 299), want: bad},
		{name: "JWT - Expiry Time - before Creation Time", call: times(-2, -1), want: bad},
		{name: "JWT - Creation Time - missing", call: without("iat"), want: bad},
		{name: "JWT - Creation Time - in the future", call: times(200, 300), want: ok},
		{name: "JWT - Reason For Request - missing", call: without("reason_for_request"), want: bad},
		{name: "JWT - Authorization Server Token URL - missing", call: without("aud"), want: bad},
		{name: "JWT - Requesting Device - missing", call: without("requesting_device"), want: bad},
		{name: "JWT - Requesting Device - invalid", call: edit(func(c map[string]any) {
			fdnObj(c["requesting_device"])["invalidField"] = "Assurance Testing"
		}), want: invalid},
		{name: "JWT - Requesting Device - Resource Type - invalid", call: edit(func(c map[string]any) {
			fdnObj(c["requesting_device"])["resourceType"] = "InvalidResourceType"
		}), want: invalid},
		{name: "JWT - Requesting Identity - missing", call: without("requesting_practitioner"), want: bad},
		{name: "JWT - Requesting Identity - UNK value", call: edit(func(c map[string]any) {
			c["requesting_practitioner"] = fdnSuitePractitioner("UNK", "UNK", true)
		}), want: ok},
		{name: "JWT - Missing sdsRoleProfile and guid", call: edit(func(c map[string]any) {
			c["requesting_practitioner"] = fdnSuitePractitioner("GCASDS0001", "", false)
		}), want: ok},
		{name: "JWT - Requesting Identity - Resource Type - invalid", call: edit(func(c map[string]any) {
			fdnObj(c["requesting_practitioner"])["resourceType"] = "InvalidResourceType"
		}), want: invalid},
		{name: "JWT - Requested Scope - missing", call: without("requested_scope"), want: bad},
		{name: "JWT - Requested Scope - Metadata - incorrect", call: edit(func(c map[string]any) { c["requested_scope"] = "badScope" }), want: bad},
		{name: "JWT - Requesting Organization - Backward Compatability for RC5", call: edit(func(c map[string]any) {
			// RC5's system is the same https URL in 1.2.7's suite.
			fdnObj(fdnList(fdnObj(c["requesting_organization"])["identifier"])[0])["system"] = "https://fhir.nhs.uk/Id/ods-organization-code"
		}), want: ok},
		{name: "JWT - Everything normal test", call: times(0, 300), want: ok},
		{name: "JWT - Consumer clock is slow 600s", call: times(-600, 300), want: bad},
	}
}

// --- PatientSearch.feature --------------------------------------------------

const (
	fdnNHSSystem          = "https://fhir.nhs.uk/Id/nhs-number"
	fdnPatientProfile     = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"
	fdnVerificationExt    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	fdnVerificationCodes  = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
	fdnRegistrationExt    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
	fdnRegistrationTypes  = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1"
	fdnCommunicationExt   = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSCommunication-1"
	fdnHumanLanguage      = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-HumanLanguage-1"
	fdnODSSystem          = "https://fhir.nhs.uk/Id/ods-organization-code"
	fdnSDSUserSystem      = "https://fhir.nhs.uk/Id/sds-user-id"
	fdnSDSRoleSystem      = "https://fhir.nhs.uk/Id/sds-role-profile-id"
	fdnOrganizationProf   = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"
	fdnPractitionerProf   = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1"
	fdnLocationProf       = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1"
	fdnNotInSystemPatient = "9999999999" // the suite's patientNotInSystem: valid, held by no practice
)

// fdnFind is the patient search by NHS number.
func fdnFind(nhs string) string { return "/Patient?identifier=" + fdnNHSSystem + "|" + nhs }

// fdnPatientValid checks every Patient of the answer against what the
// suite checks of a Patient (its NHS number identifier and verification
// status, one official name, telecom, no elements the specification
// excludes, resolvable references, the registration details) with the
// CareConnect-GPC-Patient-1 meta.profile. nhs "" accepts any NHS number.
func fdnPatientValid(nhs string) fdnCheck {
	return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
		t.Helper()
		pts := a.resources("Patient")
		if len(pts) == 0 {
			t.Fatal("no Patient")
		}
		fdnMeta("Patient", fdnPatientProfile)(t, r, a)
		for _, pt := range pts {
			ids := fdnIdentifiers(pt, fdnNHSSystem)
			if len(ids) != 1 || len(fdnList(pt["identifier"])) != 1 {
				t.Errorf("identifiers %v: want exactly the NHS number", pt["identifier"])
				continue
			}
			if v := fdnStr(ids[0]["value"]); (nhs != "" && v != nhs) || len(v) != 10 {
				t.Errorf("NHS number %q, want %s", v, nhs)
			}
			if exts := fdnExtensions(ids[0], fdnVerificationExt); len(exts) != 1 {
				t.Errorf("%d NHS number verification extensions, want 1: %v", len(exts), ids[0])
			} else if c := fdnCodingIn(t, "NHS number verification", fdnObj(exts[0]["valueCodeableConcept"]), fdnVerificationCodes); c != nil && c["code"] != "01" {
				t.Errorf("verification code %v, want 01 (Number present and verified)", c["code"])
			}
			official := 0
			for _, n := range fdnList(pt["name"]) {
				nm := fdnObj(n)
				if fdnStr(nm["use"]) == "" {
					t.Errorf("name %v has no use", nm)
				}
				if nm["use"] == "official" {
					official++
					if fdnStr(nm["family"]) == "" {
						t.Errorf("official name %v has no family", nm)
					}
				}
			}
			if official != 1 {
				t.Errorf("%d official names, want 1", official)
			}
			for _, tc := range fdnList(pt["telecom"]) {
				if m := fdnObj(tc); fdnStr(m["system"]) == "" || fdnStr(m["value"]) == "" || fdnStr(m["use"]) == "" {
					t.Errorf("telecom %v: want system, value and use", m)
				}
			}
			for _, banned := range []string{"photo", "link", "animal", "maritalStatus", "multipleBirthBoolean", "multipleBirthInteger", "deceasedBoolean", "communication"} {
				if pt[banned] != nil {
					t.Errorf("the Patient has %s", banned)
				}
			}
			for _, e := range fdnList(pt["extension"]) {
				u := fdnStr(fdnObj(e)["url"])
				for _, banned := range []string{"EthnicCategory", "ReligiousAffiliation", "cadavericDonor", "ResidentialStatus", "TreatmentCategory", "birthPlace"} {
					if strings.Contains(u, banned) {
						t.Errorf("the Patient has the extension %s", u)
					}
				}
			}
			if pt["gender"] == nil || pt["birthDate"] == nil {
				t.Errorf("gender %v birthDate %v: both are populated", pt["gender"], pt["birthDate"])
			}
			gps := fdnList(pt["generalPractitioner"])
			if len(gps) > 1 {
				t.Errorf("%d generalPractitioner, want at most 1", len(gps))
			}
			for _, gp := range gps {
				ref := fdnStr(fdnObj(gp)["reference"])
				if !strings.HasPrefix(ref, "Practitioner/") {
					t.Errorf("generalPractitioner %q is not a Practitioner", ref)
				}
				r.readable(t, ref)
			}
			if mo := fdnStr(fdnField(pt, "managingOrganization", "reference")); !strings.HasPrefix(mo, "Organization/") {
				t.Errorf("managingOrganization %q", mo)
			} else {
				r.readable(t, mo)
			}
			fdnRegistrationValid(t, r, pt, false)
		}
	}
}

// fdnRegistrationValid is the suite's "Registration Details Extension
// should be valid": one extension, at most one period, type and preferred
// branch (a readable Location); temporary adds the register rows' checks:
// type T, Temporary, and no registrationStatus.
func fdnRegistrationValid(t *testing.T, r *fdnRun, pt map[string]any, temporary bool) {
	t.Helper()
	exts := fdnExtensions(pt, fdnRegistrationExt)
	if len(exts) != 1 {
		t.Errorf("%d registration details extensions, want 1", len(exts))
		return
	}
	count := map[string]int{}
	for _, sub := range fdnList(exts[0]["extension"]) {
		sm := fdnObj(sub)
		u := fdnStr(sm["url"])
		count[u]++
		switch u {
		case "registrationPeriod":
			if sm["valuePeriod"] == nil {
				t.Errorf("registrationPeriod %v is not a Period", sm)
			}
		case "registrationType":
			c := fdnCodingIn(t, "registrationType", fdnObj(sm["valueCodeableConcept"]), fdnRegistrationTypes)
			if temporary && (c["code"] != "T" || c["display"] != "Temporary") {
				t.Errorf("registrationType %v, want T Temporary", c)
			}
		case "preferredBranchSurgery":
			ref := fdnStr(fdnField(sm, "valueReference", "reference"))
			if !strings.HasPrefix(ref, "Location/") {
				t.Errorf("preferredBranchSurgery %q is not a Location", ref)
			} else {
				r.readable(t, ref)
			}
		case "registrationStatus":
			if temporary {
				t.Error("a registration answer has registrationStatus")
			}
		}
	}
	for u, n := range count {
		if n > 1 {
			t.Errorf("%d %s, want at most 1", n, u)
		}
	}
	if count["registrationType"] != 1 && temporary {
		t.Error("no registrationType")
	}
}

func fdnPatientSearchRows() []fdnRow {
	find := func(n int) func(*testing.T, *fdnRun) fdnCall {
		return func(_ *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: fdnFind(r.p.patientNHS(n)), interaction: gpconnect.SearchPatient}
		}
	}
	query := func(q func(r *fdnRun) string) func(*testing.T, *fdnRun) fdnCall {
		return func(_ *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Patient" + q(r), interaction: gpconnect.SearchPatient}
		}
	}
	state := func(pick func(*fdnPractice, *testing.T) (string, string)) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			_, nhs := pick(r.p, t)
			return fdnCall{rel: fdnFind(nhs), interaction: gpconnect.SearchPatient}
		}
	}
	one := []fdnCheck{fdnInFormat(""), fdnSearchset("Patient", 1), fdnPatientValid("")}
	negotiated := func(name string, accept, format string, before bool) fdnRow {
		return fdnRow{name: name, fixed: true, call: func(_ *testing.T, r *fdnRun) fdnCall {
			rel := fdnFind(r.p.patientNHS(2))
			c := fdnCall{rel: rel, interaction: gpconnect.SearchPatient, accept: accept}
			if before && format != "" {
				c.rel = "/Patient?_format=" + fdnMIME(format) + "&identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2)
			} else {
				c.format = format
			}
			return c
		}, want: []fdnCheck{fdnInFormat(map[bool]string{true: format, false: accept}[format != ""]), fdnSearchset("Patient", 1),
			func(t *testing.T, r *fdnRun, a *fdnAnswer) { fdnPatientValid(r.p.patientNHS(2))(t, r, a) }}}
	}
	rows := []fdnRow{
		{name: "Returned patients should contain a logical identifier", call: find(2), want: one},
		{name: "Search for Patient without system in identifier parameter", call: query(func(r *fdnRun) string { return "?identifier=" + r.p.patientNHS(2) }),
			want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Search for Patient with blank system in identifier parameter", call: query(func(r *fdnRun) string { return "?identifier=|" + r.p.patientNHS(2) }),
			want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Patient search response returns zero results when no patient found", call: query(func(*fdnRun) string { return "?identifier=" + fdnNHSSystem + "|" + fdnNotInSystemPatient }),
			want: []fdnCheck{fdnInFormat(""), fdnSearchset("Patient", 0)}},
		{name: "Patient search failure due to missing identifier parameter", call: query(func(*fdnRun) string { return "" }),
			want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Patient search failure due to invalid identifier parameter name", call: query(func(r *fdnRun) string { return "?Identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2) }),
			want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Patient search failure due to missing identifier value", call: query(func(*fdnRun) string { return "?identifier=" + fdnNHSSystem + "|" }),
			want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Patient search with an NHS number failing the modulus-11 check", call: query(func(*fdnRun) string { return "?identifier=" + fdnNHSSystem + "|9690937287" }),
			want: []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidNHSNumber)}},
		{name: "Patient search with an identifier system the practice does not support", call: query(func(r *fdnRun) string { return "?identifier=https://example.org/Id/local|" + r.p.patientNHS(2) }),
			want: []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidIdentifierSystem)}},
		negotiated("Patient search response conforms with the GPConnect specification (Accept XML)", "xml", "", false),
		negotiated("Patient search response conforms with the GPConnect specification (Accept JSON)", "json", "", false),
		negotiated("Patient search with _format XML", "-", "xml", false),
		negotiated("Patient search with _format JSON", "-", "json", false),
		negotiated("Patient search with _format XML after identifier (Accept XML)", "xml", "xml", false),
		negotiated("Patient search with _format XML after identifier (Accept JSON)", "json", "xml", false),
		negotiated("Patient search with _format JSON after identifier (Accept JSON)", "json", "json", false),
		negotiated("Patient search with _format JSON after identifier (Accept XML)", "xml", "json", false),
		negotiated("Patient search with _format XML before identifier (Accept XML)", "xml", "xml", true),
		negotiated("Patient search with _format XML before identifier (Accept JSON)", "json", "xml", true),
		negotiated("Patient search with _format JSON before identifier (Accept JSON)", "json", "json", true),
		negotiated("Patient search with _format JSON before identifier (Accept XML)", "xml", "json", true),
		{name: "Patient deceased should not be returned", call: state((*fdnPractice).deceased), want: []fdnCheck{fdnSearchset("Patient", 0)}},
		{name: "Patient with sensitive flag should not be returned", call: state((*fdnPractice).sensitive), want: []fdnCheck{fdnSearchset("Patient", 0)}},
		{name: "Patient with inactive flag should not be returned", call: state((*fdnPractice).inactive), want: []fdnCheck{fdnSearchset("Patient", 0)}},
		{name: "Patient never traced on PDS should not be returned", call: state((*fdnPractice).notOnPDS), want: []fdnCheck{fdnSearchset("Patient", 0)}},
		{name: "Patient search for a patient who has not consented to share their record", call: state((*fdnPractice).noConsent),
			want: []fdnCheck{fdnSearchset("Patient", 1), fdnPatientValid(""), fdnNoStore}},
		{name: "CapabilityStatement profile supports the search patient operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Patient", "search-type")}},
		{name: "Patient search multiple identifier parameters (same)", call: query(func(r *fdnRun) string {
			return "?identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2) + "&identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Patient search multiple identifier parameters (patient1, patient2)", call: query(func(r *fdnRun) string {
			return "?identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(1) + "&identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Patient search multiple identifier parameters (patient2, patient1)", call: query(func(r *fdnRun) string {
			return "?identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2) + "&identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(1)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Patient search include count and sort parameters", call: query(func(r *fdnRun) string {
			return "?identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2) + "&_count=1&_sort=status"
		}), want: []fdnCheck{fdnSearchset("Patient", 1)}},
		{name: "Patient search valid response check caching headers exist", call: find(2), want: []fdnCheck{fdnSearchset("Patient", 1), fdnNoStore}},
		{name: "Patient search invalid response check caching headers exist", call: query(func(r *fdnRun) string { return "?Identifier=" + fdnNHSSystem + "|" + r.p.patientNHS(2) }),
			want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
		{name: "Patient Search and check preferred branch", call: find(2), want: []fdnCheck{fdnSearchset("Patient", 1), fdnPatientValid("")}},
	}
	for n := 1; n <= 6; n++ {
		rows = append(rows, fdnRow{name: "Patient resource conforms to GP Connect specification (patient" + strconv.Itoa(n) + ")", call: find(n),
			want: []fdnCheck{fdnInFormat(""), fdnSearchset("Patient", 1), func(t *testing.T, r *fdnRun, a *fdnAnswer) {
				fdnPatientValid(r.p.patientNHS(n))(t, r, a)
				if pt := a.resources("Patient"); len(pt) == 1 && pt[0]["active"] != true {
					t.Errorf("active %v, want true", pt[0]["active"])
				}
			}}})
	}
	for n := 1; n <= 3; n++ {
		rows = append(rows, fdnRow{name: "Patient search by NHS number identifier returns XML (patient" + strconv.Itoa(n) + ")", fixed: true,
			call: func(_ *testing.T, r *fdnRun) fdnCall {
				return fdnCall{rel: fdnFind(r.p.patientNHS(n)), interaction: gpconnect.SearchPatient, accept: "xml"}
			},
			want: []fdnCheck{fdnInFormat("xml"), fdnSearchset("Patient", 1), func(t *testing.T, r *fdnRun, a *fdnAnswer) { fdnPatientValid(r.p.patientNHS(n))(t, r, a) }}})
	}
	return rows
}

// --- PatientRead.feature ----------------------------------------------------

func fdnPatientReadRows() []fdnRow {
	read := func(id string) func(*testing.T, *fdnRun) fdnCall {
		return fdnGet("/Patient/"+id, gpconnect.ReadPatient)
	}
	valid := func(t *testing.T, r *fdnRun, a *fdnAnswer) { fdnPatientValid(r.p.patientNHS(1))(t, r, a) }
	negotiated := func(name, accept, format string) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: func(*testing.T, *fdnRun) fdnCall {
			return fdnCall{rel: "/Patient/1", interaction: gpconnect.ReadPatient, accept: accept, format: format}
		}, want: []fdnCheck{fdnInFormat(want), fdnResource("Patient", "1"), valid}}
	}
	rows := []fdnRow{
		{name: "Read patient 404 if patient not found (SomthingIncorrectWhichIsNotTheOnProviderSystem)", call: read("SomthingIncorrectWhichIsNotTheOnProviderSystem"),
			want: []fdnCheck{fdnOutcome(404, gpconnect.CodePatientNotFound)}},
		{name: "Read patient 404 if patient not found (a 58-digit number)", call: read(strings.Repeat("1234567890", 5) + "12345678"),
			want: []fdnCheck{fdnOutcome(404, gpconnect.CodePatientNotFound)}},
		{name: "Read patient 400 or 404 if patient id not sent", call: read(""), want: []fdnCheck{func(t *testing.T, r *fdnRun, a *fdnAnswer) {
			if a.status != 400 && a.status != 404 {
				t.Errorf("status %d, want 400 or 404", a.status)
			}
			fdnOutcome(a.status, "")(t, r, a)
		}}},
		negotiated("Read patient _format JSON", "-", "json"),
		negotiated("Read patient _format XML", "-", "xml"),
		negotiated("Read patient Accept JSON", "json", ""),
		negotiated("Read patient Accept XML", "xml", ""),
		negotiated("Read patient Accept JSON and _format JSON", "json", "json"),
		negotiated("Read patient Accept JSON and _format XML", "json", "xml"),
		negotiated("Read patient Accept XML and _format JSON", "xml", "json"),
		negotiated("Read patient Accept XML and _format XML", "xml", "xml"),
		{name: "Read patient should contain correct logical identifier", call: read("1"), want: []fdnCheck{fdnInFormat(""), fdnResource("Patient", "1")}},
		{name: "Read patient response should contain an ETag header", call: read("1"), want: []fdnCheck{fdnResource("Patient", "1"), fdnETag, valid}},
		{name: "Read patient resource conforms to GP Connect specification", call: read("1"), want: []fdnCheck{fdnResource("Patient", "1"), valid, fdnNoStore}},
		{name: "CapabilityStatement profile supports the read patient operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Patient", "read")}},
		{name: "Patient read valid response check caching headers exist", call: read("1"), want: []fdnCheck{fdnResource("Patient", "1"), fdnNoStore}},
		{name: "Patient read invalid response check caching headers exist", call: read("AABa"), want: []fdnCheck{fdnOutcome(404, gpconnect.CodePatientNotFound), fdnNoStore}},
		{name: "Read patient and check preferred branch", call: read("1"), want: []fdnCheck{valid}},
		{name: "Read patient who has not consented to share their record", call: func(t *testing.T, r *fdnRun) fdnCall {
			id, _ := r.p.noConsent(t)
			return fdnCall{rel: "/Patient/" + id, interaction: gpconnect.ReadPatient}
		}, want: []fdnCheck{fdnResource("Patient", ""), fdnPatientValid("")}},
		{name: "Read an inactive patient: found by read, not active", call: func(t *testing.T, r *fdnRun) fdnCall {
			id, _ := r.p.inactive(t)
			return fdnCall{rel: "/Patient/" + id, interaction: gpconnect.ReadPatient}
		}, want: []fdnCheck{fdnResource("Patient", ""), fdnPatientValid(""), func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
			if a.res["active"] != false {
				t.Errorf("active %v, want false", a.res["active"])
			}
		}}},
		{name: "Read a deceased patient: deceasedDateTime", call: func(t *testing.T, r *fdnRun) fdnCall {
			id, _ := r.p.deceased(t)
			return fdnCall{rel: "/Patient/" + id, interaction: gpconnect.ReadPatient}
		}, want: []fdnCheck{fdnResource("Patient", ""), fdnPatientValid(""), func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
			if fdnStr(a.res["deceasedDateTime"]) == "" || a.res["active"] != false {
				t.Errorf("deceasedDateTime %v active %v", a.res["deceasedDateTime"], a.res["active"])
			}
		}}},
	}
	for _, id := range []string{"aaBA", "1ZEc2", "z.as.dd", "1.1.22", "40-9", "nd-skdm.mks--s"} {
		rows = append(rows, fdnRow{name: "Read patient 404 if patient id not valid (" + id + ")", call: read(id),
			want: []fdnCheck{fdnOutcome(404, gpconnect.CodePatientNotFound)}})
	}
	return rows
}

// --- OrganizationRead.feature and OrganizationSearch.feature --------------

// fdnOrganizationValid is the suite's organisation checks: identifiers
// with system and value, exactly one ODS code (the practice's), a name,
// only the GP Connect extensions, no contact or endpoint, the profile.
func fdnOrganizationValid(t *testing.T, r *fdnRun, a *fdnAnswer) {
	t.Helper()
	orgs := a.resources("Organization")
	if len(orgs) == 0 {
		t.Fatal("no Organization")
	}
	fdnMeta("Organization", fdnOrganizationProf)(t, r, a)
	for _, o := range orgs {
		for _, id := range fdnList(o["identifier"]) {
			if m := fdnObj(id); fdnStr(m["system"]) == "" || fdnStr(m["value"]) == "" {
				t.Errorf("identifier %v: want system and value", m)
			}
		}
		if ods := fdnIdentifiers(o, fdnODSSystem); len(ods) != 1 || ods[0]["value"] != r.p.ods {
			t.Errorf("ODS identifiers %v, want exactly %s", ods, r.p.ods)
		}
		if fdnStr(o["name"]) == "" {
			t.Error("no name")
		}
		for _, e := range fdnList(o["extension"]) {
			if u := fdnStr(fdnObj(e)["url"]); !strings.HasSuffix(u, "Extension-CareConnect-GPC-MainLocation-1") && !strings.HasSuffix(u, "organization-period") {
				t.Errorf("extension %s", u)
			}
		}
		if o["contact"] != nil || o["endpoint"] != nil {
			t.Errorf("contact %v endpoint %v: both are not used", o["contact"], o["endpoint"])
		}
		if p := fdnStr(fdnField(o, "partOf", "reference")); p != "" {
			r.readable(t, p)
		}
	}
}

// fdnOrgID is the Organization's logical ID, from a search for the
// practice's ODS code, as the suite finds it.
func fdnOrgID(t *testing.T, r *fdnRun) string {
	t.Helper()
	a := r.do(t, fdnCall{rel: "/Organization?identifier=" + fdnODSSystem + "|" + r.p.ods, interaction: gpconnect.SearchOrganization})
	orgs := a.resources("Organization")
	if len(orgs) != 1 {
		t.Fatalf("search for %s: %d organisations", r.p.ods, len(orgs))
	}
	return fdnStr(orgs[0]["id"])
}

func fdnOrganizationReadRows() []fdnRow {
	readOrg := func(accept, format string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Organization/" + fdnOrgID(t, r), interaction: gpconnect.ReadOrganization, accept: accept, format: format}
		}
	}
	negotiated := func(name, accept, format string) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: readOrg(accept, format), want: []fdnCheck{fdnInFormat(want), fdnResource("Organization", ""), fdnOrganizationValid}}
	}
	rows := []fdnRow{
		{name: "Organization Read successful request validate all of response", call: readOrg("", ""), want: []fdnCheck{
			fdnInFormat(""), fdnResource("Organization", ""), fdnETag, fdnOrganizationValid, fdnNoStore}},
		negotiated("Organization Read _format JSON", "-", "json"),
		negotiated("Organization Read _format XML", "-", "xml"),
		negotiated("Organization Read Accept JSON", "json", ""),
		negotiated("Organization Read Accept XML", "xml", ""),
		negotiated("Organization Read Accept JSON and _format JSON", "json", "json"),
		negotiated("Organization Read Accept JSON and _format XML", "json", "xml"),
		negotiated("Organization Read Accept XML and _format JSON", "xml", "json"),
		negotiated("Organization Read Accept XML and _format XML", "xml", "xml"),
		{name: "CapabilityStatement profile supports the read Organization operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Organization", "read")}},
		{name: "Organization read valid response check caching headers exist", call: readOrg("", ""), want: []fdnCheck{fdnResource("Organization", ""), fdnETag, fdnNoStore}},
		{name: "Organization read invalid response check caching headers exist", call: func(t *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Organization/" + fdnOrgID(t, r), interaction: gpconnect.ReadOrganization, interactionHeader: gpconnect.ReadPractitioner}
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
	}
	for _, id := range []string{"ddBm", "1Zcr4", "z.as.e", "1.1445.23", "40-9223", "nc-sfem.mks--s"} {
		rows = append(rows, fdnRow{name: "Organization Read with valid identifier which does not exist on providers system (" + id + ")",
			call: fdnGet("/Organization/"+id, gpconnect.ReadOrganization), want: []fdnCheck{fdnOutcome(404, gpconnect.CodeOrganisationNotFound)}})
	}
	return rows
}

func fdnOrganizationSearchRows() []fdnRow {
	byCode := func(ods func(*fdnRun) string, extra string) func(*testing.T, *fdnRun) fdnCall {
		return func(_ *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Organization?identifier=" + fdnODSSystem + "|" + ods(r) + extra, interaction: gpconnect.SearchOrganization}
		}
	}
	own := func(r *fdnRun) string { return r.p.ods }
	found := []fdnCheck{fdnSearchset("Organization", 1), fdnOrganizationValid}
	negotiated := func(name, accept, format string, before bool) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: func(_ *testing.T, r *fdnRun) fdnCall {
			c := fdnCall{rel: "/Organization?identifier=" + fdnODSSystem + "|" + r.p.ods, interaction: gpconnect.SearchOrganization, accept: accept, format: format}
			if before {
				c.rel, c.format = "/Organization?_format="+fdnMIME(format)+"&identifier="+fdnODSSystem+"|"+r.p.ods, ""
			}
			return c
		}, want: append([]fdnCheck{fdnInFormat(want)}, found...)}
	}
	return []fdnRow{
		{name: "Organization search success (unknown ODS code INVOC1)", call: byCode(func(*fdnRun) string { return "INVOC1" }, ""), want: []fdnCheck{fdnInFormat(""), fdnSearchset("Organization", 0)}},
		{name: "Organization search success (the practice's ODS code)", call: byCode(own, ""), want: append([]fdnCheck{fdnInFormat("")}, found...)},
		{name: "Organization search by organization code successfully returns single result containing the correct fields", call: byCode(own, ""), want: found},
		{name: "Organization search by organization code successfully returns multiple results containing the correct fields", call: byCode(own, ""), want: found},
		{name: "Organization search failure due to no identifier parameter", call: fdnGet("/Organization", gpconnect.SearchOrganization), want: []fdnCheck{fdnFailed}},
		negotiated("Organization search Accept JSON", "json", "", false),
		negotiated("Organization search Accept XML", "xml", "", false),
		negotiated("Organization search _format JSON, no Accept", "-", "json", false),
		negotiated("Organization search _format XML, no Accept", "-", "xml", false),
		negotiated("Organization search Accept JSON and _format JSON", "json", "json", false),
		negotiated("Organization search Accept JSON and _format XML", "json", "xml", false),
		negotiated("Organization search _format JSON before identifier", "-", "json", true),
		negotiated("Organization search _format XML before identifier", "-", "xml", true),
		negotiated("Organization search _format JSON after identifier", "-", "json", false),
		negotiated("Organization search _format XML after identifier", "-", "xml", false),
		{name: "CapabilityStatement profile supports the search Organization operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Organization", "search-type")}},
		{name: "Organization search valid response contains a logical identifier", call: byCode(own, ""), want: found},
		{name: "Organization search with count parameter", call: byCode(own, "&_count=1"), want: found},
		{name: "Organization search valid response check caching headers exist", call: byCode(own, ""), want: []fdnCheck{fdnSearchset("Organization", 1), fdnNoStore}},
		{name: "Organization search invalid response check caching headers exist", call: func(_ *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Organization?identifier=" + fdnODSSystem + "|" + r.p.ods, interaction: gpconnect.SearchOrganization, interactionHeader: gpconnect.ReadPractitioner}
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
	}
}

// --- PractitionerRead.feature and PractitionerSearch.feature --------------

// fdnPractitionerValid is the suite's practitioner checks: one name with a
// family name; identifiers only of the SDS systems (and GMP number), one
// SDS user ID (sds when set) and roles SDS role profiles (roles < 0: any);
// no photo, qualification, birth date, telecom or address; the profile.
func fdnPractitionerValid(sds string, roles int) fdnCheck {
	return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
		t.Helper()
		prs := a.resources("Practitioner")
		if len(prs) == 0 {
			t.Fatal("no Practitioner")
		}
		fdnMeta("Practitioner", fdnPractitionerProf)(t, r, a)
		for _, pr := range prs {
			if names := fdnList(pr["name"]); len(names) != 1 || fdnStr(fdnObj(names[0])["family"]) == "" {
				t.Errorf("names %v: want one with a family name", names)
			}
			for _, id := range fdnList(pr["identifier"]) {
				switch s := fdnStr(fdnObj(id)["system"]); s {
				case fdnSDSUserSystem, fdnSDSRoleSystem, "https://fhir.hl7.org.uk/Id/gmp-number":
				default:
					t.Errorf("identifier system %s", s)
				}
			}
			users := fdnIdentifiers(pr, fdnSDSUserSystem)
			if len(users) != 1 || (sds != "" && users[0]["value"] != sds) {
				t.Errorf("SDS user IDs %v, want exactly %s", users, sds)
			}
			if n := len(fdnIdentifiers(pr, fdnSDSRoleSystem)); roles >= 0 && n != roles {
				t.Errorf("%d SDS role profiles, want %d", n, roles)
			}
			for _, banned := range []string{"photo", "qualification", "birthDate", "telecom", "address"} {
				if pr[banned] != nil {
					t.Errorf("the Practitioner has %s", banned)
				}
			}
		}
	}
}

func fdnPractitionerSearch(sds string) string {
	return "/Practitioner?identifier=" + fdnSDSUserSystem + "|" + sds
}

func fdnPractitionerReadRows() []fdnRow {
	readRoles := func(k int, accept, format string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			_, sds := r.p.practitionerWithRoles(t, k)
			a := r.do(t, fdnCall{rel: fdnPractitionerSearch(sds), interaction: gpconnect.SearchPractitioner})
			prs := a.resources("Practitioner")
			if len(prs) != 1 {
				t.Fatalf("search for %s: %d practitioners", sds, len(prs))
			}
			return fdnCall{rel: "/Practitioner/" + fdnStr(prs[0]["id"]), interaction: gpconnect.ReadPractitioner, accept: accept, format: format}
		}
	}
	valid := func(k int) fdnCheck {
		return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
			_, sds := r.p.practitionerWithRoles(t, k)
			fdnPractitionerValid(sds, k)(t, r, a)
		}
	}
	negotiated := func(name string, k int, accept, format string) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: readRoles(k, accept, format), want: []fdnCheck{fdnInFormat(want), fdnResource("Practitioner", ""), valid(k)}}
	}
	rows := []fdnRow{
		{name: "Practitioner read successful request validates all of the response (practitioner1, no role profile)", call: readRoles(0, "", ""),
			want: []fdnCheck{fdnInFormat(""), fdnResource("Practitioner", ""), valid(0)}},
		{name: "Practitioner read successful request validates all of the response (practitioner2, one role profile)", call: readRoles(1, "", ""),
			want: []fdnCheck{fdnInFormat(""), fdnResource("Practitioner", ""), valid(1)}},
		{name: "Practitioner read successful request validates all of the response (practitioner3, two role profiles)", call: readRoles(2, "", ""),
			want: []fdnCheck{fdnInFormat(""), fdnResource("Practitioner", ""), valid(2)}},
		negotiated("Practitioner read _format JSON", 0, "-", "json"),
		negotiated("Practitioner read _format XML", 0, "-", "xml"),
		negotiated("Practitioner read Accept JSON", 0, "json", ""),
		negotiated("Practitioner read Accept XML", 0, "xml", ""),
		negotiated("Practitioner read Accept JSON and _format JSON", 1, "json", "json"),
		negotiated("Practitioner read Accept JSON and _format XML", 1, "json", "xml"),
		negotiated("Practitioner read Accept XML and _format JSON", 1, "xml", "json"),
		negotiated("Practitioner read Accept XML and _format XML", 1, "xml", "xml"),
		{name: "CapabilityStatement profile supports the read Practitioner operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Practitioner", "read")}},
		{name: "Practitioner read response should contain an ETag header", call: readRoles(1, "", ""), want: []fdnCheck{fdnResource("Practitioner", ""), fdnETag}},
		{name: "Practitioner read valid response check caching headers exist", call: readRoles(1, "", ""), want: []fdnCheck{fdnResource("Practitioner", ""), fdnNoStore}},
		{name: "Practitioner read invalid response check caching headers exist", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := readRoles(1, "", "")(t, r)
			c.interactionHeader = gpconnect.ReadLocation
			return c
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
		{name: "Practitioner read resource conforms to GP Connect specification", call: readRoles(1, "", ""), want: []fdnCheck{fdnResource("Practitioner", ""), valid(1)}},
	}
	for _, id := range []string{"aaBA", "1ZEc2", "z.as.dd", "1.1.22", "40-9", "nd-skdm.mks--s"} {
		rows = append(rows, fdnRow{name: "Practitioner read with valid identifier which does not exist on providers system (" + id + ")",
			call: fdnGet("/Practitioner/"+id, gpconnect.ReadPractitioner), want: []fdnCheck{fdnOutcome(404, gpconnect.CodePractitionerNotFound)}})
	}
	return rows
}

func fdnPractitionerSearchRows() []fdnRow {
	byRoles := func(k int, extra string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			_, sds := r.p.practitionerWithRoles(t, k)
			return fdnCall{rel: fdnPractitionerSearch(sds) + extra, interaction: gpconnect.SearchPractitioner}
		}
	}
	found := func(k int) []fdnCheck {
		return []fdnCheck{fdnSearchset("Practitioner", 1), func(t *testing.T, r *fdnRun, a *fdnAnswer) {
			_, sds := r.p.practitionerWithRoles(t, k)
			fdnPractitionerValid(sds, k)(t, r, a)
		}}
	}
	query := func(q func(t *testing.T, r *fdnRun) string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			return fdnCall{rel: "/Practitioner" + q(t, r), interaction: gpconnect.SearchPractitioner}
		}
	}
	negotiated := func(name, accept, format string, before bool) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: func(t *testing.T, r *fdnRun) fdnCall {
			c := byRoles(1, "")(t, r)
			c.accept, c.format = accept, format
			if before {
				_, sds := r.p.practitionerWithRoles(t, 1)
				c.rel, c.format = "/Practitioner?_format="+fdnMIME(format)+"&identifier="+fdnSDSUserSystem+"|"+sds, ""
			}
			return c
		}, want: append([]fdnCheck{fdnInFormat(want)}, found(1)...)}
	}
	sds1 := func(t *testing.T, r *fdnRun) string { _, s := r.p.practitionerWithRoles(t, 1); return s }
	return []fdnRow{
		{name: "Practitioner search success and validate the practitioner identifiers (practitioner1, no role profile)", call: byRoles(0, ""), want: found(0)},
		{name: "Practitioner search success and validate the practitioner identifiers (practitioner2, one role profile)", call: byRoles(1, ""), want: found(1)},
		{name: "Practitioner search success and validate the practitioner identifiers (practitioner3, two role profiles)", call: byRoles(2, ""), want: found(2)},
		{name: "Practitioner search with an empty identifier value", call: query(func(*testing.T, *fdnRun) string { return "?identifier=" + fdnSDSUserSystem + "|" }),
			want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Practitioner search with an empty identifier system", call: query(func(t *testing.T, r *fdnRun) string { return "?identifier=|" + sds1(t, r) }),
			want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Practitioner search with an identifier system the practice does not support", call: query(func(t *testing.T, r *fdnRun) string {
			return "?identifier=https://fhir.nhs.uk/Id/nhs-number|" + sds1(t, r)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidIdentifierSystem)}},
		{name: "Practitioner search without the identifier parameter", call: query(func(*testing.T, *fdnRun) string { return "" }), want: []fdnCheck{fdnFailed, fdnInFormat("")}},
		{name: "Practitioner search where identifier contains the incorrect case", call: query(func(t *testing.T, r *fdnRun) string {
			return "?Identifier=" + fdnSDSUserSystem + "|" + sds1(t, r)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		negotiated("Practitioner search _format JSON before identifier", "-", "json", true),
		negotiated("Practitioner search _format XML before identifier", "-", "xml", true),
		negotiated("Practitioner search _format JSON after identifier", "-", "json", false),
		negotiated("Practitioner search _format XML after identifier", "-", "xml", false),
		negotiated("Practitioner search Accept JSON", "json", "", false),
		negotiated("Practitioner search Accept XML", "xml", "", false),
		negotiated("Practitioner search Accept JSON and _format JSON", "json", "json", false),
		negotiated("Practitioner search Accept JSON and _format XML", "json", "xml", false),
		negotiated("Practitioner search Accept XML and _format JSON", "xml", "json", false),
		negotiated("Practitioner search Accept XML and _format XML", "xml", "xml", false),
		{name: "Practitioner search multiple identifier parameter failure (same)", call: query(func(t *testing.T, r *fdnRun) string {
			return "?identifier=" + fdnSDSUserSystem + "|" + sds1(t, r) + "&identifier=" + fdnSDSUserSystem + "|" + sds1(t, r)
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Practitioner search multiple identifier parameter failure (different)", call: query(func(t *testing.T, r *fdnRun) string {
			_, other := r.p.practitionerWithRoles(t, 2)
			return "?identifier=" + fdnSDSUserSystem + "|" + sds1(t, r) + "&identifier=" + fdnSDSUserSystem + "|" + other
		}), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Practitioner search include count and sort parameters", call: byRoles(0, "&_sort=practitioner.coding&_count=1"), want: found(0)},
		{name: "CapabilityStatement profile supports the search Practitioner operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Practitioner", "search-type")}},
		{name: "Practitioner search valid response check caching headers exist", call: byRoles(1, ""), want: []fdnCheck{fdnSearchset("Practitioner", 1), fdnNoStore}},
		{name: "Practitioner search invalid response check caching headers exist", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := byRoles(1, "")(t, r)
			c.interactionHeader = gpconnect.ReadPractitioner
			return c
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
		{name: "Practitioner search returns resource conforming to the GP Connect specification", call: byRoles(0, ""), want: found(0)},
		{name: "Practitioner search with an unknown SDS user ID", call: query(func(*testing.T, *fdnRun) string {
			return "?identifier=" + fdnSDSUserSystem + "|unknownSDSUserID"
		}), want: []fdnCheck{fdnSearchset("Practitioner", 0)}},
	}
}

// --- LocationRead.feature ---------------------------------------------------

// fdnLocationValid is the suite's location checks, managingOrganization
// mandatory and resolvable, with the profile.
func fdnLocationValid(t *testing.T, r *fdnRun, a *fdnAnswer) {
	t.Helper()
	fdnMeta("Location", fdnLocationProf)(t, r, a)
	l := a.res
	if fdnStr(l["name"]) == "" || l["address"] == nil {
		t.Errorf("name %v address %v: both are mandatory", l["name"], l["address"])
	}
	if ids := fdnIdentifiers(l, "https://fhir.nhs.uk/Id/ods-site-code"); len(ids) > 1 {
		t.Errorf("%d ODS site codes, want at most 1", len(ids))
	}
	for _, k := range []string{"type", "physicalType"} {
		for _, c := range fdnList(fdnObj(l[k])["coding"]) {
			if m := fdnObj(c); fdnStr(m["system"]) == "" || fdnStr(m["code"]) == "" || fdnStr(m["display"]) == "" {
				t.Errorf("%s coding %v: want system, code and display", k, m)
			}
		}
	}
	if p := fdnStr(fdnField(l, "partOf", "reference")); p != "" && !strings.HasPrefix(p, "Location/") {
		t.Errorf("partOf %q", p)
	}
	mo := fdnStr(fdnField(l, "managingOrganization", "reference"))
	if !strings.HasPrefix(mo, "Organization/") {
		t.Errorf("managingOrganization %q, want Organization/<id>", mo)
	} else {
		r.readable(t, mo)
	}
	if l["endpoint"] != nil {
		t.Error("endpoint is not used")
	}
}

func fdnLocationReadRows() []fdnRow {
	read := func(n int, accept, format string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			if n > len(r.p.seed.Locations) {
				t.Fatalf("%s has %d locations; the suite needs %d", r.p.ods, len(r.p.seed.Locations), n)
			}
			return fdnCall{rel: "/Location/" + strconv.Itoa(n), interaction: gpconnect.ReadLocation, accept: accept, format: format}
		}
	}
	idIs := func(n int) fdnCheck { return fdnResource("Location", strconv.Itoa(n)) }
	negotiated := func(name, accept, format string) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: read(1, accept, format), want: []fdnCheck{fdnInFormat(want), idIs(1), fdnLocationValid}}
	}
	rows := []fdnRow{
		negotiated("Location Read with _format JSON", "-", "json"),
		negotiated("Location Read with _format XML", "-", "xml"),
		negotiated("Location Read Accept JSON and _format JSON", "json", "json"),
		negotiated("Location Read Accept JSON and _format XML", "json", "xml"),
		negotiated("Location Read Accept XML and _format JSON", "xml", "json"),
		negotiated("Location Read Accept XML and _format XML", "xml", "xml"),
		{name: "CapabilityStatement profile supports the read Location operation", call: fdnGet("/metadata", gpconnect.ReadMetadata),
			want: []fdnCheck{fdnCSInteractions("Location", "read")}},
		{name: "Read location check response contains an ETag header", call: read(1, "", ""), want: []fdnCheck{idIs(1), fdnETag}},
		{name: "Location read valid response check caching headers exist", call: read(1, "", ""), want: []fdnCheck{idIs(1), fdnNoStore}},
		{name: "Location read invalid response check caching headers exist", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := read(1, "", "")(t, r)
			c.interactionHeader = gpconnect.ReadPractitioner
			return c
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest), fdnNoStore}},
	}
	// The suite reads SIT1, SIT2 and SIT3; the row reads every location the
	// practice seeds.
	rows = append(rows, fdnRow{name: "Location Read successful request (every seeded location)", run: func(t *testing.T, r *fdnRun) {
		if len(r.p.seed.Locations) == 0 {
			t.Fatalf("%s seeds no location", r.p.ods)
		}
		for n := 1; n <= len(r.p.seed.Locations); n++ {
			a := r.do(t, read(n, "", "")(t, r))
			for _, c := range []fdnCheck{fdnInFormat(""), idIs(n), fdnLocationValid} {
				c(t, r, a)
			}
		}
	}})
	for _, id := range []string{"mfpBm", "231Zcr64", "th.as.e", "11dd4.45-23", "40-95-3", "a-tm.mss..s"} {
		rows = append(rows, fdnRow{name: "Location read with valid identifier which does not exist on providers system (" + id + ")",
			call: fdnGet("/Location/"+id, gpconnect.ReadLocation), want: []fdnCheck{fdnOutcome(404, gpconnect.CodeNoRecordFound)}})
	}
	return rows
}
