package profile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The fixtures: small hand-written profiles under testdata/profiles, one
// element for each kind of rule (see their comments).
const (
	ex            = "https://example.org/StructureDefinition/"
	testPatient   = ex + "Test-Patient-1"
	testOrg       = ex + "Test-Organization-1"
	testBundle    = ex + "Test-Bundle-1"
	colourExt     = ex + "Ext-Colour-1"
	testMaritalCS = "https://example.org/CodeSystem/Test-Marital-1"
)

var fixtures = sync.OnceValues(func() (*Set, error) { return Load(filepath.Join("testdata", "profiles")) })

func fixtureSet(t testing.TB) *Set {
	t.Helper()
	s, err := fixtures()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validPatient conforms to Test-Patient-1, and uses every element of it.
const validPatient = `{
  "resourceType": "Patient", "id": "1",
  "meta": {"profile": ["https://example.org/StructureDefinition/Test-Patient-1"]},
  "contained": [{"resourceType": "Organization", "id": "org",
    "meta": {"profile": ["https://example.org/StructureDefinition/Test-Organization-1"]}, "name": "Leeds Road Surgery"}],
  "extension": [{"url": "https://example.org/StructureDefinition/Ext-Colour-1", "valueCode": "red"}],
  "identifier": [
    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9690937286"},
    {"system": "https://example.org/Id/local", "value": "L1"}],
  "name": [{"use": "official", "family": "SMITH", "given": ["Ann", "Marie"]}],
  "telecom": [{"system": "phone", "value": "0113 496 0000"}],
  "address": [{"use": "home", "line": ["1 Leeds Road"]}, {"use": "temp", "line": ["2 York Road"]}, {"use": "work"}],
  "gender": "female",
  "birthDate": "1980-01-02",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1980-01-02T06:30:00+00:00"}]},
  "deceasedDateTime": "2020-05-06T07:08:09+01:00",
  "multipleBirthInteger": 2,
  "maritalStatus": {"coding": [{"system": "https://example.org/CodeSystem/Test-Marital-1", "code": "W"}]},
  "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en", "display": "English"}], "text": "English"}, "preferred": true}],
  "generalPractitioner": [{"reference": "#org"}, {"reference": "https://example.org/fhir/Organization/7/_history/2"}],
  "managingOrganization": {"reference": "Organization/1", "display": "any profile will do"},
  "contact": [{"other": {"reference": "Patient/2"}, "type": "seealso"}]
}`

// want is one problem a case expects: its rule and path.
type want struct {
	rule Rule
	path string
}

// TestCheckRules breaks each kind of rule once, from a patient that
// conforms, and expects exactly the problems named: each rule catches its
// violation, and nothing else is reported.
func TestCheckRules(t *testing.T) {
	s := fixtureSet(t)
	if ps := s.Check([]byte(validPatient)); len(ps) != 0 {
		t.Fatalf("the valid patient has problems:\n%s", problemList(ps))
	}
	tests := []struct {
		name string
		edit func(m map[string]any)
		want []want
	}{
		// Cardinality.
		{"a mandatory element missing", func(m map[string]any) { delete(m, "name") },
			[]want{{RuleCardinality, "Patient.name"}}},
		{"more than max", func(m map[string]any) { m["name"] = append(m["name"].([]any), m["name"].([]any)[0]) },
			[]want{{RuleCardinality, "Patient.name"}}},
		{"an element the profile forbids (0..0)", func(m map[string]any) { m["active"] = true },
			[]want{{RuleCardinality, "Patient.active"}}},
		{"a mandatory slice missing", func(m map[string]any) { m["identifier"] = m["identifier"].([]any)[1:] },
			[]want{{RuleCardinality, "Patient.identifier"}}},
		{"a mandatory member of a slice missing", func(m map[string]any) { delete(at(m, "identifier", 0), "value") },
			[]want{{RuleCardinality, "Patient.identifier[0].value"}}},
		{"a mandatory member of a contentReference missing", func(m map[string]any) { delete(at(m, "contact", 0), "other") },
			[]want{{RuleCardinality, "Patient.contact[0].other"}}},

		// Fixed and pattern values.
		{"a fixed code changed", func(m map[string]any) { at(m, "name", 0)["use"] = "usual" },
			[]want{{RuleFixed, "Patient.name[0].use"}}},
		{"a pattern not matched", func(m map[string]any) {
			at(m, "communication", 0)["language"] = map[string]any{"coding": []any{map[string]any{"system": "urn:ietf:bcp:47", "code": "cy"}}}
		}, []want{{RulePattern, "Patient.communication[0].language"}}},

		// Required bindings.
		{"a code outside its ValueSet", func(m map[string]any) { m["gender"] = "other" },
			[]want{{RuleBinding, "Patient.gender"}}},
		{"a code outside the CodeSystem a ValueSet includes", func(m map[string]any) {
			m["maritalStatus"] = map[string]any{"coding": []any{map[string]any{"system": testMaritalCS, "code": "Q"}}}
		}, []want{{RuleBinding, "Patient.maritalStatus.coding"}}},
		{"a code the ValueSet excludes", func(m map[string]any) {
			m["maritalStatus"] = map[string]any{"coding": []any{map[string]any{"system": testMaritalCS, "code": "X"}}}
		}, []want{{RuleBinding, "Patient.maritalStatus.coding"}}},
		{"a code of another system", func(m map[string]any) {
			m["maritalStatus"] = map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/v3/MaritalStatus", "code": "M"}}}
		}, []want{{RuleBinding, "Patient.maritalStatus.coding"}}},
		{"a CodeableConcept without coding", func(m map[string]any) { m["maritalStatus"] = map[string]any{"text": "married"} },
			[]want{{RuleBinding, "Patient.maritalStatus"}}},
		{"a code in a part a terminology server would decide is let pass", func(m map[string]any) { at(m, "extension", 0)["valueCode"] = "blue" },
			nil},

		// Extensions.
		{"an extension the profile does not list", func(m map[string]any) {
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": "https://example.org/StructureDefinition/Other-1", "valueString": "x"})
		}, []want{{RuleExtension, "Patient.extension[1]"}}},
		{"an extension with a value of the wrong type", func(m map[string]any) {
			m["extension"] = []any{map[string]any{"url": colourExt, "valueString": "red"}}
		}, []want{{RuleExtension, "Patient.extension[0].valueString"}, {RuleCardinality, "Patient.extension[0].valueCode"}}},
		{"an extension's value outside its binding", func(m map[string]any) { at(m, "extension", 0)["valueCode"] = "" },
			[]want{{RuleType, "Patient.extension[0].valueCode"}}},
		{"an extension inside an extension that forbids them", func(m map[string]any) {
			at(m, "extension", 0)["extension"] = []any{map[string]any{"url": "https://example.org/x", "valueString": "y"}}
		}, []want{{RuleCardinality, "Patient.extension[0].extension"}, {RuleExtension, "Patient.extension[0].extension[0]"}}},
		{"an extension on an element that lists none", func(m map[string]any) {
			at(m, "name", 0)["extension"] = []any{map[string]any{"url": "https://example.org/x", "valueString": "y"}}
		}, []want{{RuleExtension, "Patient.name[0].extension[0]"}}},
		{"an extension on a primitive that the profile does not list", func(m map[string]any) {
			m["_birthDate"] = map[string]any{"extension": []any{map[string]any{"url": "https://example.org/x", "valueString": "y"}}}
		}, []want{{RuleExtension, "Patient.birthDate.extension[0]"}}},

		// meta.profile.
		{"no meta.profile: checked against the default, and said", func(m map[string]any) {
			delete(m, "meta")
			m["active"] = false
		}, []want{{RuleProfile, "Patient.meta.profile"}, {RuleCardinality, "Patient.active"}}},
		{"meta.profile naming a profile not in the set", func(m map[string]any) {
			m["meta"] = map[string]any{"profile": []any{ex + "Unknown-1"}}
		}, []want{{RuleProfile, "Patient.meta.profile"}}},
		{"meta.profile naming a profile of another type", func(m map[string]any) {
			m["meta"] = map[string]any{"profile": []any{testOrg}}
		}, []want{{RuleProfile, "Patient.meta.profile"}}},

		// Slicing.
		{"an item of no slice in closed slicing", func(m map[string]any) {
			m["telecom"] = []any{map[string]any{"system": "email", "value": "a@example.org"}}
		}, []want{{RuleSlicing, "Patient.telecom[0]"}}},
		{"an item of no slice before a sliced one (openAtEnd)", func(m map[string]any) {
			ids := m["identifier"].([]any)
			m["identifier"] = []any{ids[1], ids[0]}
		}, []want{{RuleSlicing, "Patient.identifier[1]"}}},

		{"slices out of order (ordered)", func(m map[string]any) {
			as := m["address"].([]any)
			m["address"] = []any{as[1], as[0]}
		}, []want{{RuleSlicing, "Patient.address[1]"}}},
		{"a member a slice makes mandatory missing", func(m map[string]any) { delete(at(m, "address", 0), "line") },
			[]want{{RuleCardinality, "Patient.address[0].line"}}},
		{"more of a slice than its max", func(m map[string]any) { m["address"] = append([]any{at(m, "address", 0)}, m["address"].([]any)...) },
			[]want{{RuleCardinality, "Patient.address"}}},

		// JSON types and formats.
		{"a date in another format", func(m map[string]any) { m["birthDate"] = "02/01/1980" },
			[]want{{RuleType, "Patient.birthDate"}}},
		{"a dateTime without its zone", func(m map[string]any) { m["deceasedDateTime"] = "2020-05-06T07:08:09" },
			[]want{{RuleType, "Patient.deceasedDateTime"}}},
		{"a number as a string", func(m map[string]any) { m["multipleBirthInteger"] = "2" },
			[]want{{RuleType, "Patient.multipleBirthInteger"}}},
		{"a boolean as a string", func(m map[string]any) { at(m, "communication", 0)["preferred"] = "true" },
			[]want{{RuleType, "Patient.communication[0].preferred"}}},
		{"a single element as an array", func(m map[string]any) { m["gender"] = []any{"female"} },
			[]want{{RuleType, "Patient.gender"}}},
		{"a repeating element not as an array", func(m map[string]any) { at(m, "name", 0)["given"] = "Ann" },
			[]want{{RuleType, "Patient.name[0].given"}}},
		{"an empty string", func(m map[string]any) { at(m, "name", 0)["family"] = "" },
			[]want{{RuleType, "Patient.name[0].family"}}},
		{"an empty array", func(m map[string]any) { at(m, "name", 0)["given"] = []any{} },
			[]want{{RuleType, "Patient.name[0].given"}}},
		{"an empty object", func(m map[string]any) { m["managingOrganization"] = map[string]any{} },
			[]want{{RuleType, "Patient.managingOrganization"}}},
		{"two types of one choice", func(m map[string]any) { m["multipleBirthBoolean"] = true },
			[]want{{RuleType, "Patient.multipleBirth[x]"}}},

		// Members the profile does not define.
		{"an unknown member", func(m map[string]any) { m["nickname"] = "Annie" },
			[]want{{RuleElement, "Patient.nickname"}}},
		{"a type the profile took out of a choice", func(m map[string]any) { m["deceasedBoolean"] = true },
			[]want{{RuleType, "Patient.deceasedBoolean"}}},
		{"a type a choice does not have", func(m map[string]any) { m["multipleBirthString"] = "twins" },
			[]want{{RuleType, "Patient.multipleBirthString"}}},

		// References.
		{"a reference to a type the element does not allow", func(m map[string]any) {
			m["generalPractitioner"] = []any{map[string]any{"reference": "Patient/2"}}
		}, []want{{RuleReference, "Patient.generalPractitioner[0].reference"}}},
		{"a reference to no contained resource", func(m map[string]any) {
			m["generalPractitioner"] = []any{map[string]any{"reference": "#nobody"}}
		}, []want{{RuleReference, "Patient.generalPractitioner[0].reference"}}},
		{"a contained target that claims another profile", func(m map[string]any) {
			at(m, "contained", 0)["meta"] = map[string]any{"profile": []any{ex + "Other-Organization-1"}}
		}, []want{{RuleProfile, "Patient.contained[0].ofType(Organization).meta.profile"}, {RuleReference, "Patient.generalPractitioner[0].reference"}}},

		// Contained resources are checked by their own profile.
		{"a contained resource breaking its profile", func(m map[string]any) { delete(at(m, "contained", 0), "name") },
			[]want{{RuleCardinality, "Patient.contained[0].ofType(Organization).name"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(validPatient), &m); err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, s.Check(b), tc.want)
		})
	}
}

// at returns item i of the list m[key], as an object.
func at(m map[string]any, key string, i int) map[string]any {
	return m[key].([]any)[i].(map[string]any)
}

// expect fails unless got holds exactly the problems wanted, in any order,
// each with its profile and element filled in.
func expect(t *testing.T, got []Problem, wanted []want) {
	t.Helper()
	var g []want
	for _, p := range got {
		g = append(g, want{p.Rule, p.Path})
		if p.Profile == "" || (p.Element == "" && p.Rule != RuleProfile) || p.Detail == "" {
			t.Errorf("problem without profile, element or detail: %#v", p)
		}
	}
	sortWants(g)
	w := slices.Clone(wanted)
	sortWants(w)
	if !slices.Equal(g, w) {
		t.Errorf("problems %v, want %v:\n%s", g, w, problemList(got))
	}
}

func sortWants(w []want) {
	slices.SortFunc(w, func(a, b want) int { return strings.Compare(string(a.rule)+a.path, string(b.rule)+b.path) })
}

func problemList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

// TestCheckBundleEntries checks a searchset Bundle against its profile and
// each entry against the entry's own.
func TestCheckBundleEntries(t *testing.T) {
	s := fixtureSet(t)
	bundle := func(total bool, patient string) []byte {
		b := `{"resourceType":"Bundle","meta":{"profile":["` + testBundle + `"]},"type":"searchset",`
		if total {
			b += `"total":1,`
		}
		return []byte(b + `"entry":[{"fullUrl":"https://example.org/fhir/Patient/1","resource":` + patient + `}]}`)
	}
	active := strings.Replace(validPatient, `"id": "1",`, `"id": "1", "active": true,`, 1)
	expect(t, s.Check(bundle(false, validPatient)), nil)
	expect(t, s.Check(bundle(true, validPatient)), []want{{RuleCardinality, "Bundle.total"}})
	expect(t, s.Check(bundle(false, active)), []want{{RuleCardinality, "Bundle.entry[0].resource.ofType(Patient).active"}})

	// Without meta.profile, by Bundle.type, and said.
	expect(t, s.Check([]byte(`{"resourceType":"Bundle","type":"searchset"}`)), []want{{RuleProfile, "Bundle.meta.profile"}})
	expect(t, s.Check([]byte(`{"resourceType":"Bundle","type":"history"}`)), []want{{RuleProfile, "Bundle.meta.profile"}, {RuleFixed, "Bundle.type"}})

	// A reference to an entry: its profile must be a target's.
	res := s.Validate(bundle(false, strings.Replace(validPatient, `"reference": "#org"`, `"reference": "Patient/1"`, 1)))
	expect(t, res.Problems, []want{{RuleReference, "Bundle.entry[0].resource.ofType(Patient).generalPractitioner[0].reference"}})
	got := fmt.Sprint(res.Checked)
	for _, w := range []string{"{Bundle Bundle " + testBundle + "}", "{Bundle.entry[0].resource.ofType(Patient) Patient " + testPatient + "}",
		"{Bundle.entry[0].resource.ofType(Patient).contained[0].ofType(Organization) Organization " + testOrg + "}"} {
		if !strings.Contains(got, w) {
			t.Errorf("Checked %s lacks %s", got, w)
		}
	}
}

// TestCheckNotAResource covers input that is not a resource at all.
func TestCheckNotAResource(t *testing.T) {
	s := fixtureSet(t)
	for _, in := range []string{``, `[]`, `{"id":"1"}`, `{"resourceType":`} {
		if ps := s.Check([]byte(in)); len(ps) != 1 {
			t.Errorf("%q: %v, want one problem", in, ps)
		}
	}
	// A type with no profile in the set is checked against nothing, and
	// says so; its contained resources are still checked.
	res := s.Validate([]byte(`{"resourceType":"CapabilityStatement","contained":[{"resourceType":"Organization","id":"o"}]}`))
	expect(t, res.Problems, []want{{RuleProfile, "CapabilityStatement.contained[0].ofType(Organization).meta.profile"}, {RuleCardinality, "CapabilityStatement.contained[0].ofType(Organization).name"}})
	if len(res.Checked) != 2 || res.Checked[0].Profile != "" || res.Checked[1].Profile != testOrg {
		t.Errorf("Checked %v", res.Checked)
	}
}

// TestUnchecked lists what the fixtures need that the folder lacks.
func TestUnchecked(t *testing.T) {
	s := fixtureSet(t)
	var got []string
	for _, u := range s.Unchecked(testPatient) {
		got = append(got, string(u.Rule)+" "+u.Target+": "+u.Reason+" @ "+strings.Join(u.Elements, ", "))
	}
	wanted := []string{
		"binding http://hl7.org/fhir/ValueSet/languages-required: a core FHIR STU3 ValueSet, not published in gpconnect-fhir @ Test-Patient-1: Patient.language",
		"binding https://example.org/ValueSet/Test-Colour-1: includes http://snomed.info/sct by filter: needs a terminology server (a code outside the parts listed cannot be refused) @ Ext-Colour-1: Extension.value[x]:valueCode",
		"extension http://hl7.org/fhir/StructureDefinition/patient-birthTime: a core FHIR STU3 definition, not published in gpconnect-fhir @ Test-Patient-1: Patient.birthDate.extension:birthTime",
		"extension https://example.org/StructureDefinition/Ext-Lost-1: not in testdata/profiles @ Test-Patient-1: Patient.extension:lost",
		"profile StructureDefinitions/Broken-1.xml: cannot be read: XML syntax error on line 5: attribute name without = in element @ ",
	}
	if !slices.Equal(got, wanted) {
		t.Errorf("Unchecked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wanted, "\n"))
	}
}

// TestLoad covers folders that cannot be used.
func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "ValueSet-x.xml"), []byte(`<ValueSet xmlns="http://hl7.org/fhir"><url value="x"/></ValueSet>`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "no StructureDefinition") {
		t.Errorf("Load of a folder without profiles: %v", err)
	}
	s := fixtureSet(t)
	if got := s.Profiles(); !slices.Equal(got, []string{colourExt, testBundle, testOrg, testPatient}) {
		t.Errorf("Profiles() = %v", got)
	}
	if got := s.DefaultProfile("Patient", ""); got != testPatient {
		t.Errorf("default Patient profile %q", got)
	}
}

// TestForTest covers finding the folder: the environment variable first,
// and a folder that is not there fails the test with where to get it.
func TestForTest(t *testing.T) {
	t.Setenv(EnvDir, filepath.Join("testdata", "profiles"))
	if d, err := Dir(); err != nil || d != filepath.Join("testdata", "profiles") {
		t.Errorf("Dir() = %q, %v", d, err)
	}
	if s := ForTest(t); s == nil || len(s.Profiles()) != 4 {
		t.Errorf("ForTest loaded %v", s)
	}

	missing := filepath.Join(t.TempDir(), "gpconnect-fhir")
	t.Setenv(EnvDir, missing)
	r := &recorder{TB: t}
	if s := ForTest(r); s != nil {
		t.Error("ForTest of a missing folder returned a set")
	}
	msg := strings.Join(r.fatals, "\n")
	for _, w := range []string{missing + " does not exist", "nhsconnect/gpconnect-fhir, branch release/1.2.7", EnvDir} {
		if !strings.Contains(msg, w) {
			t.Errorf("ForTest's failure %q does not say %q", msg, w)
		}
	}

	t.Setenv(EnvDir, "")
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..", "..")
	d, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	candidates := []string{filepath.Join(root, "..", "shared", "gpconnect-fhir")}
	if m := mainWorktree(root); m != "" {
		candidates = append(candidates, filepath.Join(m, "..", "shared", "gpconnect-fhir"))
	}
	if !slices.Contains(candidates, d) {
		t.Errorf("Dir() without %s = %q, want one of %q", EnvDir, d, candidates)
	}
}

// TestMainWorktree follows a linked worktree's .git file to the main
// working tree, whose ../shared holds the profiles.
func TestMainWorktree(t *testing.T) {
	repo := t.TempDir()
	wt := filepath.Join(t.TempDir(), "profile")
	admin := filepath.Join(repo, ".git", "worktrees", "profile")
	for _, d := range []string{admin, wt} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(wt, ".git"), "gitdir: "+admin+"\n")
	write(filepath.Join(admin, "commondir"), "../..\n")
	if got := mainWorktree(wt); got != repo {
		t.Errorf("mainWorktree = %q, want %q", got, repo)
	}
	if got := mainWorktree(repo); got != "" {
		t.Errorf("mainWorktree of the main tree = %q, want none", got)
	}
	write(filepath.Join(wt, ".git"), "not a gitdir line")
	if got := mainWorktree(wt); got != "" {
		t.Errorf("mainWorktree of a bad .git file = %q", got)
	}
}

// recorder is a testing.TB that keeps fatal failures instead of stopping,
// so that ForTest's own failure can be tested.
type recorder struct {
	testing.TB
	fatals []string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, a...))
}

// FuzzCheck feeds the checker arbitrary JSON: it reports, it never panics.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(validPatient))
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","name":{}}}]}`))
	f.Add([]byte(`{"resourceType":"Patient","extension":[null,1,{"url":5}],"_birthDate":[1],"name":[null]}`))
	f.Add([]byte(`{"resourceType":"Patient","contained":[{"resourceType":"Patient","contained":[{}]}],"generalPractitioner":[{"reference":"/"}]}`))
	s, err := fixtures()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range s.Check(b) {
			if p.Rule == "" || p.Detail == "" {
				t.Errorf("problem without rule or detail: %#v", p)
			}
		}
	})
}

// TestWithCoreTerminology adds ValueSets and CodeSystems from a core
// terminology bundle: bindings to them are then checked, the folder's own
// definitions win, and a CodeSystem that is not complete decides nothing.
func TestWithCoreTerminology(t *testing.T) {
	s := fixtureSet(t)
	c, err := s.WithCoreTerminology(filepath.Join("testdata", "core-terminology.json"))
	if err != nil {
		t.Fatal(err)
	}
	patient := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal([]byte(validPatient), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		return b
	}
	french := patient(func(m map[string]any) { m["language"] = "fr" })
	expect(t, s.Check(french), nil) // no ValueSet: not checked
	expect(t, c.Check(french), []want{{RuleBinding, "Patient.language"}})
	expect(t, c.Check(patient(func(m map[string]any) { m["language"] = "en-GB" })), nil)
	// The folder's Test-Gender-1 (male, female) wins over the bundle's.
	expect(t, c.Check(patient(func(m map[string]any) { m["gender"] = "other" })), []want{{RuleBinding, "Patient.gender"}})
	// The SNOMED CT stub is "not-present": a colour outside the enumerated
	// ones is still not refused.
	expect(t, c.Check(patient(func(m map[string]any) { at(m, "extension", 0)["valueCode"] = "blue" })), nil)

	for _, u := range c.Unchecked(testPatient) {
		if u.Target == "http://hl7.org/fhir/ValueSet/languages-required" {
			t.Errorf("still unchecked with the core terminology: %s", u)
		}
	}
	if len(s.Unchecked(testPatient)) != len(c.Unchecked(testPatient))+1 {
		t.Errorf("Unchecked: %d without the core terminology, %d with", len(s.Unchecked(testPatient)), len(c.Unchecked(testPatient)))
	}

	for _, bad := range []string{`{"resourceType":"Patient"}`, `{"resourceType":"Bundle","entry":[]}`, `not json`} {
		f := filepath.Join(t.TempDir(), "core.json")
		if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WithCoreTerminology(f); err == nil {
			t.Errorf("WithCoreTerminology(%s) succeeded", bad)
		}
	}
}
