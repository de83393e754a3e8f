package main

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sspemu/gpconnect"
	"sspemu/pds"
)

// PatientRegister.feature: $gpc.registerpatient. The rows register PDS's
// unregistered patients (pds.Unregistered), as the suite registers the
// patients of its RegisterPatients.csv after tracing them.

const fdnRegisterRel = "/Patient/$gpc.registerpatient"

// fdnRegistrant is the suite's default registration of a traced patient
// (DefaultRegisterPatientBuilder): the NHS number with its verification
// status, one official name, gender, birth date and the profile.
func fdnRegistrant(p pds.Patient) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"meta":         map[string]any{"profile": []any{fdnPatientProfile}},
		"identifier": []any{map[string]any{
			"extension": []any{map[string]any{"url": fdnVerificationExt, "valueCodeableConcept": map[string]any{
				"coding": []any{map[string]any{"system": fdnVerificationCodes, "code": "01", "display": "Number present and verified"}}}}},
			"system": fdnNHSSystem, "value": p.NHSNumber,
		}},
		"name":      []any{map[string]any{"use": "official", "family": p.Family, "given": []any{p.Given[0]}}},
		"gender":    p.Gender,
		"birthDate": p.BirthDate,
	}
}

// fdnParameters is the Parameters body with one registerPatient per
// patient.
func fdnParameters(t *testing.T, patients ...map[string]any) string {
	var params []any
	for _, p := range patients {
		params = append(params, map[string]any{"name": "registerPatient", "resource": p})
	}
	return fdnJSON(t, map[string]any{"resourceType": "Parameters", "parameter": params})
}

// fdnRegister registers the next PDS patient, changed by edit, and keeps
// what it sent for the checks.
func fdnRegister(edit func(t *testing.T, r *fdnRun, pt map[string]any)) func(*testing.T, *fdnRun) fdnCall {
	return func(t *testing.T, r *fdnRun) fdnCall {
		r.from = r.p.nextToRegister(t)
		pt := fdnRegistrant(r.from)
		if edit != nil {
			edit(t, r, pt)
		}
		r.sent = pt
		return fdnCall{rel: fdnRegisterRel, interaction: gpconnect.RegisterPatient, body: fdnParameters(t, pt)}
	}
}

func fdnOfficialName(pt map[string]any) map[string]any {
	for _, n := range fdnList(pt["name"]) {
		if fdnObj(n)["use"] == "official" {
			return fdnObj(n)
		}
	}
	return nil
}

func fdnAppend(pt map[string]any, key string, v any) { pt[key] = append(fdnList(pt[key]), v) }

// The suite's elements (RegisterPatientSteps).
func fdnAddress(use string) map[string]any {
	return map[string]any{"use": use, "line": []any{"1 Trevelyan Square", "Boar Lane"}, "city": "Leeds", "postalCode": "LS1 6AE"}
}

func fdnTelecom(use string) map[string]any {
	if use == "email" {
		return map[string]any{"system": "email", "value": "abc.d@mail.com", "use": "temp"}
	}
	return map[string]any{"system": "phone", "value": "01234567891", "use": use}
}

func fdnNHSCommunication() map[string]any {
	return map[string]any{"url": fdnCommunicationExt, "extension": []any{
		map[string]any{"url": "language", "valueCodeableConcept": map[string]any{"coding": []any{
			map[string]any{"system": fdnHumanLanguage, "code": "de", "display": "German"}}}},
		map[string]any{"url": "interpreterRequired", "valueBoolean": true},
	}}
}

// fdnRegistered is the suite's successful registration: a searchset with
// one Patient that is valid, with the NHS number sent, a temporary
// registration, and the demographics sent (the gender from PDS when none
// was sent), and without the elements the specification excludes.
func fdnRegistered(t *testing.T, r *fdnRun, a *fdnAnswer) {
	t.Helper()
	fdnSearchset("Patient", 1)(t, r, a)
	sent := r.sent
	nhs := fdnStr(fdnObj(fdnList(sent["identifier"])[0])["value"])
	fdnPatientValid(nhs)(t, r, a)
	pts := a.resources("Patient")
	if len(pts) != 1 {
		return
	}
	pt := pts[0]
	fdnRegistrationValid(t, r, pt, true)
	if pt["birthDate"] != sent["birthDate"] {
		t.Errorf("birthDate %v, want %v", pt["birthDate"], sent["birthDate"])
	}
	wantGender := sent["gender"]
	if wantGender == nil {
		wantGender = r.from.Gender
	}
	if pt["gender"] != wantGender {
		t.Errorf("gender %v, want %v", pt["gender"], wantGender)
	}
	got, want := fdnOfficialName(pt), fdnOfficialName(sent)
	if !strings.EqualFold(fdnStr(got["family"]), fdnStr(want["family"])) {
		t.Errorf("family %v, want %v", got["family"], want["family"])
	}
	for _, g := range fdnList(want["given"]) {
		if !slices.Contains(fdnList(got["given"]), g) {
			t.Errorf("given names %v lack %v", got["given"], g)
		}
	}
	if pt["active"] != true {
		t.Errorf("active %v, want true", pt["active"])
	}
}

// fdnKept checks the answer's Patient kept every element of kind (address,
// telecom) that was sent, as sent.
func fdnKept(kind string) fdnCheck {
	return func(t *testing.T, r *fdnRun, a *fdnAnswer) {
		t.Helper()
		pts := a.resources("Patient")
		if len(pts) != 1 {
			t.Fatalf("%d patients", len(pts))
		}
		for _, s := range fdnList(r.sent[kind]) {
			sm := fdnObj(s)
			found := slices.ContainsFunc(fdnList(pts[0][kind]), func(g any) bool {
				gm := fdnObj(g)
				for k, v := range sm {
					if fdnJSON(t, gm[k]) != fdnJSON(t, v) {
						return false
					}
				}
				return true
			})
			if !found {
				t.Errorf("%s %v sent, not in %v", kind, sm, pts[0][kind])
			}
		}
	}
}

func fdnPatientRegisterRows() []fdnRow {
	ok := []fdnCheck{fdnInFormat(""), fdnRegistered}
	invalid := []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidResource)}
	demographics := []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidPatientDemographics)}
	edit := func(fn func(pt map[string]any)) func(*testing.T, *fdnRun) fdnCall {
		return fdnRegister(func(_ *testing.T, _ *fdnRun, pt map[string]any) { fn(pt) })
	}
	url := func(rel string) func(*testing.T, *fdnRun) fdnCall {
		return func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(nil)(t, r)
			c.rel = rel
			return c
		}
	}
	withNHS := func(nhs string) func(pt map[string]any) {
		return func(pt map[string]any) { fdnObj(fdnList(pt["identifier"])[0])["value"] = nhs }
	}
	negotiated := func(name, contentType, accept, format string, generic bool) fdnRow {
		want := accept
		if format != "" {
			want = format
		}
		return fdnRow{name: name, fixed: true, call: func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(func(_ *testing.T, _ *fdnRun, pt map[string]any) {
				if generic {
					fdnAppend(pt, "identifier", map[string]any{"system": "GenericIdentifierSystem", "value": "GenericIdentifierValue"})
				}
			})(t, r)
			c.contentType, c.accept, c.format = contentType, accept, format
			return c
		}, want: []fdnCheck{fdnInFormat(want), fdnRegistered, fdnNoStore}}
	}
	rows := []fdnRow{
		{name: "Register patient send request to incorrect URL (Patient/$gpc.registerpatien)", call: url("/Patient/$gpc.registerpatien"), want: []fdnCheck{fdnFailed}},
		{name: "Register patient send request to incorrect URL (Patient/$gpc.registerpati#ent)", call: url("/Patient/$gpc.registerpati#ent"), want: []fdnCheck{fdnFailed}},
		// Suite: 400 INVALID_NHS_NUMBER. Spec (Register a patient, error
		// table): no NHS number is a Patient without the minimum details,
		// INVALID_RESOURCE.
		{name: "Register patient without sending identifier within patient", call: edit(func(pt map[string]any) { delete(pt, "identifier") }), want: invalid},
		{name: "Register patient without gender element", call: edit(func(pt map[string]any) { delete(pt, "gender") }), want: ok},
		// Suite: 400 BAD_REQUEST. Spec: the birth date is one of the minimum
		// details, INVALID_RESOURCE.
		{name: "Register patient without date of birth element", call: edit(func(pt map[string]any) { delete(pt, "birthDate") }), want: invalid},
		negotiated("Register Patient and use the Accept Header to request response format (XML)", "xml", "xml", "", false),
		negotiated("Register Patient and use the Accept Header to request response format (JSON)", "json", "json", "", false),
		negotiated("Register Patient and use the _format parameter to request the response format (XML)", "xml", "", "xml", false),
		negotiated("Register Patient and use the _format parameter to request the response format (JSON)", "json", "", "json", false),
		{name: "Register patient with invalid bundle resource type", jsonOnly: true, call: func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(nil)(t, r)
			c.body = strings.Replace(c.body, `"resourceType":"Parameters"`, `"resourceType":"InvalidResourceType"`, 1)
			return c
		}, want: invalid},
		{name: "Register patient with invalid patient resource type", jsonOnly: true, call: edit(func(pt map[string]any) { pt["resourceType"] = "InvalidResourceType" }), want: invalid},
		{name: "Register patient with invalid patient resource with additional element", jsonOnly: true,
			call: edit(func(pt map[string]any) { pt["invalidField"] = "Assurance Testing" }), want: invalid},
		// Suite: 400 BAD_REQUEST. Spec: an invalid Parameters is 422; the
		// repeated parameter is named in INVALID_PARAMETER.
		{name: "Register patient with duplicate patient resource parameters", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(nil)(t, r)
			c.body = fdnParameters(t, r.sent, r.sent)
			return c
		}, want: []fdnCheck{fdnOutcome(422, gpconnect.CodeInvalidParameter)}},
		{name: "Register patient1 which already exists on the system as a normal patient", run: func(t *testing.T, r *fdnRun) {
			found := r.do(t, fdnCall{rel: fdnFind(r.p.patientNHS(1)), interaction: gpconnect.SearchPatient})
			pts := found.resources("Patient")
			if len(pts) != 1 {
				t.Fatalf("patient1: %d patients found", len(pts))
			}
			p := pts[0]
			id := fdnIdentifiers(p, fdnNHSSystem)[0]
			body := map[string]any{"resourceType": "Patient", "meta": map[string]any{"profile": []any{fdnPatientProfile}},
				"identifier": []any{map[string]any{"system": id["system"], "value": id["value"]}},
				"name":       []any{fdnList(p["name"])[0]}, "gender": p["gender"], "birthDate": p["birthDate"]}
			a := r.do(t, fdnCall{rel: fdnRegisterRel, interaction: gpconnect.RegisterPatient, body: fdnParameters(t, body)})
			fdnOutcome(409, gpconnect.CodeDuplicateRejected)(t, r, a)
		}},
		{name: "Register patient which already exists on the system as a temporary patient", run: func(t *testing.T, r *fdnRun) {
			c := fdnRegister(nil)(t, r)
			fdnRegistered(t, r, r.do(t, c))
			fdnOutcome(409, gpconnect.CodeDuplicateRejected)(t, r, r.do(t, c))
		}},
		{name: "Register patient which is not the Spine (held by the practice, never traced, not on PDS)", call: func(t *testing.T, r *fdnRun) fdnCall {
			id, _ := r.p.notOnPDS(t)
			return fdnRegisterSeedPatient(t, r, id)
		}, want: demographics},
		{name: "Register patient with an NHS number PDS does not hold", call: edit(withNHS(pds.TestNotFound)), want: demographics},
		// Suite: 400 BAD_REQUEST for the next four. Spec: an official name
		// with family and given names is one of the minimum details, and an
		// identifier needs its system: INVALID_RESOURCE.
		{name: "Register patient with no official name", call: edit(func(pt map[string]any) { fdnOfficialName(pt)["use"] = "anonymous" }), want: invalid},
		{name: "Register patient no family names", call: edit(func(pt map[string]any) { delete(fdnOfficialName(pt), "family") }), want: invalid},
		{name: "Register patient containing identifier without mandatory system elements", call: edit(func(pt map[string]any) {
			fdnAppend(pt, "identifier", map[string]any{"value": "NewIdentifierNoSystem"})
		}), want: invalid},
		{name: "Register patient with family name not matching PDS (all names removed)", call: edit(func(pt map[string]any) { delete(pt, "name") }), want: invalid},
		{name: "Register patient with Address and Telecom", call: edit(func(pt map[string]any) {
			fdnAppend(pt, "address", fdnAddress("temp"))
			fdnAppend(pt, "telecom", fdnTelecom("home"))
		}), want: append(ok, fdnKept("address"), fdnKept("telecom"))},
		{name: "Register patient with Multiple Address not allowed and Telecom", call: edit(func(pt map[string]any) {
			fdnAppend(pt, "address", fdnAddress("temp"))
			fdnAppend(pt, "address", fdnAddress("temp"))
			fdnAppend(pt, "telecom", fdnTelecom("home"))
		}), want: invalid},
		{name: "Register patient with Address Telecom and nhsCommunication", call: edit(func(pt map[string]any) {
			fdnAppend(pt, "address", fdnAddress("temp"))
			fdnAppend(pt, "telecom", fdnTelecom("home"))
			fdnAppend(pt, "extension", fdnNHSCommunication())
		}), want: append(ok, fdnKept("address"), fdnKept("telecom"), func(t *testing.T, _ *fdnRun, a *fdnAnswer) {
			pts := a.resources("Patient")
			if len(pts) != 1 {
				return
			}
			exts := fdnExtensions(pts[0], fdnCommunicationExt)
			if len(exts) != 1 {
				t.Fatalf("%d NHSCommunication extensions, want 1", len(exts))
			}
			lang := fdnExtensions(exts[0], "language")
			interp := fdnExtensions(exts[0], "interpreterRequired")
			if len(lang) != 1 || len(interp) != 1 || interp[0]["valueBoolean"] != true {
				t.Fatalf("NHSCommunication %v: want its language and interpreterRequired true", exts[0])
			}
			if c := fdnCodingIn(t, "language", fdnObj(lang[0]["valueCodeableConcept"]), fdnHumanLanguage); c["code"] != "de" {
				t.Errorf("language %v, want de", c)
			}
		})},
		{name: "Register patient with Address Telecom and multiple nhsCommunication", call: edit(func(pt map[string]any) {
			fdnAppend(pt, "address", fdnAddress("temp"))
			fdnAppend(pt, "telecom", fdnTelecom("home"))
			fdnAppend(pt, "extension", fdnNHSCommunication())
			fdnAppend(pt, "extension", fdnNHSCommunication())
		}), want: invalid},
		{name: "Register patient setting JWT request type to invalid type (patient/*.read)", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(nil)(t, r)
			c.scope = "patient/*.read"
			return c
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		{name: "Register patient setting JWT request type to invalid type (organization/*.read)", call: func(t *testing.T, r *fdnRun) fdnCall {
			c := fdnRegister(nil)(t, r)
			c.scope = "organization/*.read"
			return c
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeBadRequest)}},
		// Suite: 400 INVALID_NHS_NUMBER (see the row without identifier).
		{name: "Register patient invalid response check caching headers exist", call: edit(func(pt map[string]any) { delete(pt, "identifier") }),
			want: append(invalid, fdnNoStore)},
		{name: "Register patient and check preferred branch", call: fdnRegister(nil), want: ok},
		{name: "Register deceased patient (the practice's deceased patient)", call: func(t *testing.T, r *fdnRun) fdnCall {
			_, nhs := r.p.deceased(t)
			return fdnRegister(func(_ *testing.T, _ *fdnRun, pt map[string]any) { withNHS(nhs)(pt) })(t, r)
		}, want: demographics},
		{name: "Register deceased patient (PDS's deceased test patient, its own demographics)", call: fdnRegisterPDS(pds.TestDeceased), want: demographics},
		{name: "Register sensitive patient (the practice's sensitive patient)", call: func(t *testing.T, r *fdnRun) fdnCall {
			_, nhs := r.p.sensitive(t)
			return fdnRegister(func(_ *testing.T, _ *fdnRun, pt map[string]any) { withNHS(nhs)(pt) })(t, r)
		}, want: demographics},
		{name: "Register sensitive patient (PDS's sensitive test patient, its own demographics)", call: fdnRegisterPDS(pds.TestSensitive), want: demographics},
		{name: "Register patient with a superseded NHS number", call: edit(withNHS(pds.TestSuperseded)), want: []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidNHSNumber)}},
		{name: "Register patient whose demographics do not verify against PDS", call: edit(func(pt map[string]any) {
			pt["birthDate"] = "1901-12-31"
			fdnOfficialName(pt)["family"] = "NOTTHEPDSNAME"
		}), want: demographics},
		{name: "Register patient who verifies on two parts of the birth date, family and given names", call: edit(func(pt map[string]any) {
			d := fdnStr(pt["birthDate"])
			day, _ := strconv.Atoi(d[8:])
			pt["birthDate"] = d[:8] + strconv.Itoa(10+(day+1)%18)
		}), want: ok},
		{name: "Register an inactive patient: re-activated as a temporary patient", run: fdnReactivate},
		{name: "Register patient leaves PDS's record as it was", run: fdnRegisterLeavesPDS},
	}
	for _, bad := range []string{"34555##4", "hello", "999999999", "9000000008", "90000000090"} {
		rows = append(rows, fdnRow{name: "Register patient with an invalid NHS number (" + bad + ")", call: func(t *testing.T, r *fdnRun) fdnCall {
			return fdnRegister(func(_ *testing.T, _ *fdnRun, pt map[string]any) {
				pt["identifier"] = []any{map[string]any{"system": fdnNHSSystem, "value": bad}}
			})(t, r)
		}, want: []fdnCheck{fdnOutcome(400, gpconnect.CodeInvalidNHSNumber)}})
	}
	for _, f := range [][3]string{
		{"xml", "xml", "xml"}, {"xml", "xml", "json"}, {"json", "json", "xml"}, {"xml", "json", "json"},
		{"json", "xml", "xml"}, {"json", "json", "json"}, {"xml", "json", "xml"}, {"json", "xml", "json"},
	} {
		rows = append(rows, negotiated("Register Patient and use both the Accept header and _format parameter to request the response format (Content-Type "+f[0]+", Accept "+f[1]+", _format "+f[2]+")",
			f[0], f[1], f[2], true))
	}
	for _, n := range []int{1, 2, 5} {
		rows = append(rows, fdnRow{name: "Register Patient with multiple given names (" + strconv.Itoa(n) + " more)", call: edit(func(pt map[string]any) {
			for i := range n {
				fdnAppend(fdnOfficialName(pt), "given", "GivenName-"+strconv.Itoa(i+1))
			}
		}), want: ok})
	}
	for _, el := range []struct {
		name string
		add  func(pt map[string]any)
		kept string
	}{
		{"Address", func(pt map[string]any) { fdnAppend(pt, "address", fdnAddress("temp")) }, "address"},
		{"Name", func(pt map[string]any) {
			fdnAppend(pt, "name", map[string]any{"use": "nickname", "family": "AdditionalFamily", "given": []any{"AdditionalGiven"}})
		}, "name"},
		{"Telecom", func(pt map[string]any) { fdnAppend(pt, "telecom", fdnTelecom("home")) }, "telecom"},
	} {
		rows = append(rows, fdnRow{name: "Register patient with additional valid elements (" + el.name + ")", call: edit(el.add), want: append(ok, fdnKept(el.kept))})
	}
	for _, el := range []struct {
		name string
		add  func(pt map[string]any)
	}{
		{"Active", func(pt map[string]any) { pt["active"] = true }},
		{"Births", func(pt map[string]any) { pt["multipleBirthBoolean"] = true }},
		{"CareProvider", func(pt map[string]any) {
			pt["generalPractitioner"] = []any{map[string]any{"display": "Test Care Provider"}}
		}},
		{"Contact", func(pt map[string]any) {
			pt["contact"] = []any{map[string]any{"name": map[string]any{"use": "anonymous", "family": "TestFamily", "given": []any{"TestGiven"}}}}
		}},
		{"ManagingOrg", func(pt map[string]any) { pt["managingOrganization"] = map[string]any{"display": "Test Managing Org"} }},
		{"Marital", func(pt map[string]any) {
			pt["maritalStatus"] = map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/v3/MaritalStatus", "code": "M"}}}
		}},
	} {
		rows = append(rows, fdnRow{name: "Register patient with invalid additional valid elements (" + el.name + ")", call: edit(el.add), want: invalid})
	}
	for _, el := range []struct {
		name string
		add  func(pt map[string]any)
	}{
		{"Animal", func(pt map[string]any) {
			pt["animal"] = map[string]any{"species": map[string]any{"coding": []any{map[string]any{"system": "AllSpecies", "code": "Human"}}}}
		}},
		{"Communication", func(pt map[string]any) {
			pt["communication"] = []any{map[string]any{"language": map[string]any{"coding": []any{map[string]any{"system": "https://tools.ietf.org/html/bcp47", "code": "en"}}}}}
		}},
		{"Photo", func(pt map[string]any) { pt["photo"] = []any{map[string]any{"url": "Test Photo Element"}} }},
		{"Deceased", func(pt map[string]any) { pt["deceasedDateTime"] = "2017-09-01T10:00:00+00:00" }},
	} {
		rows = append(rows, fdnRow{name: "Register patient with additional not allowed elements (" + el.name + ")", call: edit(el.add), want: invalid})
	}
	uses := []string{"home", "work", "mobile", "temp", "email"}
	for _, u1 := range uses {
		for _, u2 := range uses {
			pair := func(pt map[string]any) {
				fdnAppend(pt, "address", fdnAddress("temp"))
				fdnAppend(pt, "telecom", fdnTelecom(u1))
				fdnAppend(pt, "telecom", fdnTelecom(u2))
			}
			if u1 != u2 {
				rows = append(rows, fdnRow{name: "Register patient with Address and Valid Telecom elements (" + u1 + ", " + u2 + ")", call: edit(pair),
					want: append(ok, fdnKept("address"), fdnKept("telecom"))})
				continue
			}
			// Suite: 400 BAD_REQUEST. Spec: "No more than one instance of each
			// use SHALL be populated": an invalid Patient, INVALID_RESOURCE.
			rows = append(rows, fdnRow{name: "Register patient with Address and Invalid Telecom elements (" + u1 + ", " + u2 + ")", call: edit(pair), want: invalid})
		}
	}
	addressUses := [][]string{{"home", "temp"}, {"temp", "home"}}
	for _, us := range addressUses {
		rows = append(rows, fdnRow{name: "Register patient with valid address uses (" + strings.Join(us, ", ") + ")", call: edit(func(pt map[string]any) {
			for _, u := range us {
				fdnAppend(pt, "address", fdnAddress(u))
			}
		}), want: append(ok, fdnKept("address"))})
	}
	for _, us := range [][]string{{"home", "work"}, {"home", "home"}, {"home", "old"}, {"old", "work"}, {"old", "old"},
		{"old", "temp"}, {"temp", "work"}, {"temp", "temp"}, {"temp", "old"}, {"work"}, {"old"}} {
		rows = append(rows, fdnRow{name: "Register patient with invalid address uses (" + strings.Join(us, ", ") + ")", call: edit(func(pt map[string]any) {
			for _, u := range us {
				fdnAppend(pt, "address", fdnAddress(u))
			}
		}), want: invalid})
	}
	return rows
}

// fdnRegisterSeedPatient registers a patient the practice already holds
// (by logical ID), with the demographics it holds.
func fdnRegisterSeedPatient(t *testing.T, r *fdnRun, id string) fdnCall {
	t.Helper()
	a := r.do(t, fdnCall{rel: "/Patient/" + id, interaction: gpconnect.ReadPatient})
	if a.status != 200 {
		t.Fatalf("Patient/%s: %d", id, a.status)
	}
	name := fdnOfficialName(a.res)
	body := map[string]any{"resourceType": "Patient",
		"identifier": []any{map[string]any{"system": fdnNHSSystem, "value": fdnIdentifiers(a.res, fdnNHSSystem)[0]["value"]}},
		"name":       []any{map[string]any{"use": "official", "family": name["family"], "given": name["given"]}},
		"gender":     a.res["gender"], "birthDate": a.res["birthDate"]}
	r.sent = body
	return fdnCall{rel: fdnRegisterRel, interaction: gpconnect.RegisterPatient, body: fdnParameters(t, body)}
}

// fdnRegisterPDS registers one of PDS's own test patients with the
// demographics PDS holds for them.
func fdnRegisterPDS(nhs string) func(*testing.T, *fdnRun) fdnCall {
	return func(t *testing.T, r *fdnRun) fdnCall {
		p, ok := r.s.st.pds.Patient(nhs)
		if !ok {
			t.Fatalf("PDS holds no %s", nhs)
		}
		r.from = p
		r.sent = fdnRegistrant(p)
		return fdnCall{rel: fdnRegisterRel, interaction: gpconnect.RegisterPatient, body: fdnParameters(t, r.sent)}
	}
}

// fdnReactivate registers the practice's inactive patient: the same record
// (logical ID) comes back as a temporary, active patient with a new
// version, the patient search finds it, and registering again is a
// duplicate. The practice is reset first, so the row runs in each format.
func fdnReactivate(t *testing.T, r *fdnRun) {
	if err := r.s.st.demo.ResetPractice(r.p.ods); err != nil {
		t.Fatal(err)
	}
	id, nhs := r.p.inactive(t)
	before := r.do(t, fdnCall{rel: "/Patient/" + id, interaction: gpconnect.ReadPatient})
	c := fdnRegisterSeedPatient(t, r, id)
	a := r.do(t, c)
	fdnRegistered(t, r, a)
	if pts := a.resources("Patient"); len(pts) == 1 {
		if pts[0]["id"] != id {
			t.Errorf("re-activated as Patient/%v, want the record Patient/%s", pts[0]["id"], id)
		}
		if v, old := fdnStr(fdnField(pts[0], "meta", "versionId")), fdnStr(fdnField(before.res, "meta", "versionId")); v == old {
			t.Errorf("versionId %s unchanged by the re-activation", v)
		}
	}
	fdnSearchset("Patient", 1)(t, r, r.do(t, fdnCall{rel: fdnFind(nhs), interaction: gpconnect.SearchPatient}))
	fdnOutcome(409, gpconnect.CodeDuplicateRejected)(t, r, r.do(t, c))
}

// fdnRegisterLeavesPDS registers a PDS patient and traces them on PDS
// after: a temporary registration does not change the registered practice
// PDS holds (none, for these patients), and the practice then finds them.
func fdnRegisterLeavesPDS(t *testing.T, r *fdnRun) {
	c := fdnRegister(nil)(t, r)
	fdnRegistered(t, r, r.do(t, c))
	nhs := r.from.NHSNumber
	code, rec := getJSON(t, spineClient(t, r.s.cfg), "https://"+r.s.st.addrs["spine"]+pds.BasePath+"/Patient/"+url.PathEscape(nhs), pdsHeaders())
	if code != 200 || rec["generalPractitioner"] != nil {
		t.Errorf("PDS after the registration: %d, generalPractitioner %v (want none)", code, rec["generalPractitioner"])
	}
	fdnSearchset("Patient", 1)(t, r, r.do(t, fdnCall{rel: fdnFind(nhs), interaction: gpconnect.SearchPatient}))
}
