package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sspemu/fhir/fhirtest"
)

var update = flag.Bool("update", false, "rewrite the golden XML files in testdata/golden")

// decode reads JSON for a semantic comparison; numbers stay as written, so
// that 1.50 and 1.5 differ (a decimal's precision is part of its value).
func decode(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, data)
	}
	return v
}

func corpus(t *testing.T, dir, ext string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*."+ext))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata/%s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), "."+ext)] = b
	}
	return out
}

// TestJSONRoundTrip: every JSON resource of the corpus turns into XML that
// the official STU3 schema accepts, that matches its golden file, and that
// turns back into the same JSON.
func TestJSONRoundTrip(t *testing.T) {
	docs := corpus(t, "json", "json")
	docs["bundle-slot-search"] = slotSearchBundle(t, 12)
	for name, in := range docs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x, err := JSONToXML(in)
			if err != nil {
				t.Fatalf("JSONToXML: %v", err)
			}
			fhirtest.ValidateXML(t, x)
			golden(t, filepath.Join("testdata", "golden", name+".xml"), x)
			back, err := XMLToJSON(x)
			if err != nil {
				t.Fatalf("XMLToJSON: %v\n%s", err, x)
			}
			if got, want := decode(t, back), decode(t, in); !reflect.DeepEqual(got, want) {
				t.Fatalf("JSON → XML → JSON changed the resource:\n got %s\nwant %s", back, in)
			}
			x2, err := JSONToXML(back)
			if err != nil {
				t.Fatalf("JSONToXML (second pass): %v", err)
			}
			if !bytes.Equal(x2, x) {
				t.Fatalf("second pass XML differs:\n%s\n%s", x2, x)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./fhir -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("XML differs from %s (go test ./fhir -update rewrites it):\n got %s\nwant %s", path, got, want)
	}
}

// TestXMLRoundTrip: XML written as other producers write it (namespace
// prefixes, comments, a declaration, line breaks, a prefixed narrative) is
// valid STU3, turns into JSON, and that JSON into valid XML that reads back
// to the same JSON.
func TestXMLRoundTrip(t *testing.T) {
	for name, in := range corpus(t, "xml", "xml") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fhirtest.ValidateXML(t, in)
			j, err := XMLToJSON(in)
			if err != nil {
				t.Fatalf("XMLToJSON: %v", err)
			}
			if !json.Valid(j) {
				t.Fatalf("XMLToJSON wrote invalid JSON:\n%s", j)
			}
			golden(t, filepath.Join("testdata", "golden", name+".json"), j)
			x, err := JSONToXML(j)
			if err != nil {
				t.Fatalf("JSONToXML: %v\n%s", err, j)
			}
			fhirtest.ValidateXML(t, x)
			j2, err := XMLToJSON(x)
			if err != nil {
				t.Fatalf("XMLToJSON (second pass): %v\n%s", err, x)
			}
			if !bytes.Equal(j2, j) {
				t.Fatalf("XML → JSON → XML → JSON changed the resource:\n got %s\nwant %s", j2, j)
			}
		})
	}
}

// TestXMLErrors: what XMLToJSON refuses, and that the error names the item
// and where it is.
func TestXMLErrors(t *testing.T) {
	const p = `<Patient xmlns="http://hl7.org/fhir">`
	deep := `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="a"/>` +
		strings.Repeat(`<part><name value="a"/>`, 120) + strings.Repeat(`</part>`, 120) + `</parameter></Parameters>`
	tests := []struct {
		name   string
		in     string
		want   string
		syntax bool
	}{
		{"unknown element", p + `<foo value="1"/></Patient>`, `unknown element "foo" at Patient.foo`, false},
		{"unknown nested element", p + `<name><family value="Ng"/><nickname value="x"/></name></Patient>`, `unknown element "nickname" at Patient.name[0].nickname`, false},
		{"unknown element in a later item", p + `<name><family value="Ng"/></name><name><middle value="x"/></name></Patient>`, `unknown element "middle" at Patient.name[1].middle`, false},
		{"unknown element in a contained resource", p + `<contained><Organization><title value="x"/></Organization></contained></Patient>`, `unknown element "title" at Patient.contained[0].title`, false},
		{"unknown element in an extension", p + `<extension url="http://x"><valueFoo value="1"/></extension></Patient>`, `unknown element "valueFoo" at Patient.extension[0].valueFoo`, false},
		{"unknown element in a primitive", p + `<gender value="male"><coding/></gender></Patient>`, `unknown element "coding" at Patient.gender.coding`, false},
		{"wrong choice type", p + `<deceasedString value="x"/></Patient>`, `unknown element "deceasedString" at Patient.deceasedString`, false},
		{"id as an element in a datatype", p + `<name><id value="n1"/></name></Patient>`, `unknown element "id" at Patient.name[0].id`, false},
		{"unknown attribute on a primitive", p + `<gender value="male" foo="1"/></Patient>`, `unknown attribute "foo" at Patient.gender`, false},
		{"unknown attribute on a datatype", p + `<name use="official"/></Patient>`, `unknown attribute "use" at Patient.name[0]`, false},
		{"attribute on the resource", `<Patient xmlns="http://hl7.org/fhir" id="1"/>`, `unknown attribute "id" at Patient`, false},
		{"namespaced attribute", p + `<gender xmlns:q="urn:q" q:value="male"/></Patient>`, `unknown attribute "{urn:q}value" at Patient.gender`, false},
		{"repeated value attribute", p + `<gender value="male" value="female"/></Patient>`, `attribute "value" is repeated at Patient.gender`, false},
		{"empty value", p + `<gender value=""/></Patient>`, `empty value attribute`, false},
		{"no value nor extension", p + `<gender/></Patient>`, `gender has neither a value nor extensions at Patient.gender`, false},
		{"text in a primitive", p + `<gender>male</gender></Patient>`, `text is not allowed in gender`, false},
		{"text in a datatype", p + `<name>Ng</name></Patient>`, `text is not allowed in name at Patient.name[0]`, false},
		{"out of order", p + `<gender value="male"/><name><family value="Ng"/></name></Patient>`, `element "name" is out of order`, false},
		{"repeated single element", p + `<gender value="male"/><gender value="female"/></Patient>`, `element "gender" is repeated at Patient.gender`, false},
		{"two choices", p + `<deceasedBoolean value="true"/><deceasedDateTime value="2020"/></Patient>`, `element "deceasedDateTime" is repeated`, false},
		{"boolean", p + `<active value="yes"/></Patient>`, `boolean "yes" is neither true nor false at Patient.active`, false},
		{"integer", p + `<multipleBirthInteger value="1.5"/></Patient>`, `integer "1.5" is not in the STU3 form at Patient.multipleBirthInteger`, false},
		{"integer range", p + `<multipleBirthInteger value="2147483648"/></Patient>`, `out of the 32-bit range`, false},
		{"positiveInt", `<Bundle xmlns="http://hl7.org/fhir"><total value="-1"/></Bundle>`, `unsignedInt -1 is negative at Bundle.total`, false},
		{"decimal exponent", `<Location xmlns="http://hl7.org/fhir"><position><longitude value="1e5"/><latitude value="0"/></position></Location>`, `decimal "1e5" is not in the STU3 form at Location.position.longitude`, false},
		{"unsupported resource", `<Observation xmlns="http://hl7.org/fhir"><status value="final"/></Observation>`, `resource type "Observation" is not supported at Observation`, false},
		{"unsupported contained resource", p + `<contained><Observation><status value="final"/></Observation></contained></Patient>`, `resource type "Observation" is not supported at Patient.contained[0]`, false},
		{"unsupported bundle resource", `<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><resource><Encounter/></resource></entry></Bundle>`, `resource type "Encounter" is not supported at Bundle.entry[0].resource`, false},
		{"unsupported parameter resource", `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="x"/><resource><MedicationStatement/></resource></parameter></Parameters>`, `resource type "MedicationStatement" is not supported at Parameters.parameter[0].resource`, false},
		{"two resources in a slot", p + `<contained><Organization/><Location/></contained></Patient>`, `contained holds more than one resource`, false},
		{"empty slot", p + `<contained/></Patient>`, `contained holds no resource`, false},
		{"no namespace", `<Patient><id value="1"/></Patient>`, `root element <Patient> is not in the FHIR namespace`, false},
		{"wrong namespace", `<Patient xmlns="http://hl7.org/fhir/R4"/>`, `is not in the FHIR namespace`, false},
		{"child in another namespace", p + `<gender xmlns="urn:other" value="male"/></Patient>`, `element "gender" is not in the namespace http://hl7.org/fhir at Patient.gender`, false},
		{"narrative outside XHTML", p + `<text><status value="generated"/><div><p>x</p></div></text></Patient>`, `element "div" is not in the namespace http://www.w3.org/1999/xhtml at Patient.text.div`, false},
		{"narrative with SVG", p + `<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><svg xmlns="http://www.w3.org/2000/svg"/></div></text></Patient>`, `the narrative has element <svg> outside the XHTML namespace at Patient.text.div`, false},
		{"narrative with a foreign attribute", p + `<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml" xmlns:x="urn:x"><a x:href="y">l</a></div></text></Patient>`, `the narrative has attribute href outside the XHTML namespace`, false},
		{"narrative with a processing instruction", p + `<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><?php echo 1 ?></div></text></Patient>`, `processing instruction`, false},
		{"DOCTYPE", `<!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"/>`, `DOCTYPE and other declarations are not allowed`, true},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + p + `<name><family value="&xxe;"/></name></Patient>`, `DOCTYPE and other declarations are not allowed`, true},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` + p + `<name><family value="&lol3;"/></name></Patient>`, `DOCTYPE and other declarations are not allowed`, true},
		{"undeclared entity", p + `<name><family value="&nbsp;"/></name></Patient>`, `malformed XML`, true},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + p + `</Patient>`, `malformed XML`, true},
		{"malformed", p + `<name><family value="Ng"></name></Patient>`, `malformed XML`, true},
		{"truncated", p + `<name><family value="Ng"/>`, `malformed XML`, true},
		{"not XML", `{"resourceType":"Patient"}`, `text outside the root element`, true},
		{"empty", ``, `no root element`, true},
		{"content after the root", p + `</Patient><Patient xmlns="http://hl7.org/fhir"/>`, `content after the root element`, true},
		{"text after the root", p + `</Patient>trailing`, `text outside the root element`, true},
		{"processing instruction", `<?xml-stylesheet href="x"?>` + p + `</Patient>`, `processing instruction <?xml-stylesheet?> is not allowed`, true},
		{"too deep", deep, `nested deeper than 100`, true},
		{"narrative too deep", p + `<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">` + strings.Repeat("<b>", 120) + strings.Repeat("</b>", 120) + `</div></text></Patient>`, `the narrative is nested too deep`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := XMLToJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("XMLToJSON accepted it: %s", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *fhir.Error", err)
			}
			if errors.Is(err, ErrSyntax) != tc.syntax || errors.Is(err, ErrInvalid) == tc.syntax {
				t.Fatalf("error %q: ErrSyntax %v, want %v", err, errors.Is(err, ErrSyntax), tc.syntax)
			}
		})
	}
}

// TestJSONErrors: what JSONToXML refuses, naming the member and its path.
func TestJSONErrors(t *testing.T) {
	// Reference.identifier.assigner nests one JSON level per XML level.
	deep := `{"resourceType":"Patient","managingOrganization":` + strings.Repeat(`{"identifier":{"assigner":`, 55) + `{"display":"x"}` + strings.Repeat(`}}`, 55) + `}`
	tests := []struct {
		name   string
		in     string
		want   string
		syntax bool
	}{
		{"unknown member", `{"resourceType":"Patient","foo":1}`, `unknown member "foo" at Patient.foo`, false},
		{"unknown nested member", `{"resourceType":"Patient","name":[{"family":"Ng"},{"nickname":"x"}]}`, `unknown member "nickname" at Patient.name[1].nickname`, false},
		{"unknown member in a contained resource", `{"resourceType":"Appointment","contained":[{"resourceType":"Organization","title":"x"}]}`, `unknown member "title" at Appointment.contained[0].title`, false},
		{"unknown member in a primitive's extension", `{"resourceType":"Patient","_gender":{"extension":[{"url":"http://x","valueFoo":1}]}}`, `unknown member "valueFoo" at Patient.gender.extension[0].valueFoo`, false},
		{"unknown member in _name", `{"resourceType":"Patient","_gender":{"text":"x"}}`, `unknown member "text" at Patient.gender.text`, false},
		{"_ member of a datatype", `{"resourceType":"Patient","_name":[{"id":"x"}]}`, `unknown member "_name" (only primitives have a _ member) at Patient._name`, false},
		{"_id of a datatype", `{"resourceType":"Patient","name":[{"id":"n","_id":{"id":"x"}}]}`, `member "_id" cannot be said in XML at Patient.name[0]._id`, false},
		{"resourceType in a datatype", `{"resourceType":"Patient","name":[{"resourceType":"HumanName"}]}`, `unknown member "resourceType" at Patient.name[0].resourceType`, false},
		{"unsupported resource", `{"resourceType":"Observation","status":"final"}`, `resource type "Observation" is not supported at Observation`, false},
		{"unsupported contained resource", `{"resourceType":"Patient","contained":[{"resourceType":"Observation"}]}`, `resource type "Observation" is not supported at Patient.contained[0]`, false},
		{"unsupported bundle resource", `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Encounter"}}]}`, `resource type "Encounter" is not supported at Bundle.entry[0].resource`, false},
		{"unsupported parameter resource", `{"resourceType":"Parameters","parameter":[{"name":"x","resource":{"resourceType":"List"}}]}`, `resource type "List" is not supported at Parameters.parameter[0].resource`, false},
		{"no resourceType", `{"id":"1"}`, `no resourceType member`, false},
		{"resourceType not a string", `{"resourceType":1}`, `resourceType must be a string`, false},
		{"duplicate resourceType", `{"resourceType":"Patient","resourceType":"Slot"}`, `duplicate member "resourceType"`, false},
		{"not an object", `[1]`, `a FHIR resource must be a JSON object, not an array`, false},
		{"string boolean", `{"resourceType":"Patient","active":"true"}`, `boolean must be a JSON boolean, not a string at Patient.active`, false},
		{"fractional integer", `{"resourceType":"Patient","multipleBirthInteger":1.5}`, `integer "1.5" is not in the STU3 form at Patient.multipleBirthInteger`, false},
		{"string integer", `{"resourceType":"Patient","telecom":[{"rank":"1"}]}`, `positiveInt must be a JSON number, not a string at Patient.telecom[0].rank`, false},
		{"zero positiveInt", `{"resourceType":"Patient","telecom":[{"rank":0}]}`, `positiveInt 0 is not positive at Patient.telecom[0].rank`, false},
		{"number string", `{"resourceType":"Patient","gender":1}`, `code must be a JSON string, not a number at Patient.gender`, false},
		{"string decimal", `{"resourceType":"Location","position":{"longitude":"1.5"}}`, `decimal must be a JSON number, not a string at Location.position.longitude`, false},
		{"array for a single element", `{"resourceType":"Patient","gender":["male"]}`, `gender must not be an array at Patient.gender`, false},
		{"object for an array", `{"resourceType":"Patient","name":{"family":"Ng"}}`, `name must be an array at Patient.name`, false},
		{"string for an object", `{"resourceType":"Patient","maritalStatus":"M"}`, `CodeableConcept must be a JSON object, not a string at Patient.maritalStatus`, false},
		{"null in an array", `{"resourceType":"Patient","name":[{"given":["a",null]}]}`, `null in given without an extension in _given at Patient.name[0].given[1]`, false},
		{"null datatype in an array", `{"resourceType":"Patient","name":[null]}`, `HumanName must be a JSON object, not null at Patient.name[0]`, false},
		{"_given length", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]}`, `_given has 1 items, given has 2 at Patient.name[0].given`, false},
		{"id only on a primitive", `{"resourceType":"Patient","_gender":{"id":"g"}}`, `gender has neither a value nor extensions at Patient.gender`, false},
		{"two choices", `{"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"}`, `both "deceasedBoolean" and "deceasedDateTime" given for deceased[x] at Patient.deceasedDateTime`, false},
		{"duplicate member", `{"resourceType":"Patient","gender":"male","gender":"female"}`, `duplicate member "gender" at Patient.gender`, false},
		{"control character", `{"resourceType":"Patient","name":[{"family":"a\u0001b"}]}`, `control character '\x01' cannot be written in XML at Patient.name[0].family`, false},
		{"noncharacter", `{"resourceType":"Patient","name":[{"family":"a\uffffb"}]}`, `cannot be written in XML`, false},
		{"narrative without namespace", `{"resourceType":"Patient","text":{"status":"generated","div":"<div><p>x</p></div>"}}`, `the narrative must be one <div> element in the XHTML namespace at Patient.text.div`, false},
		{"narrative not a div", `{"resourceType":"Patient","text":{"status":"generated","div":"<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>"}}`, `the narrative must be one <div> element`, false},
		{"narrative two roots", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"/><div xmlns=\"http://www.w3.org/1999/xhtml\"/>"}}`, `the narrative must be one <div> element`, false},
		{"narrative with an entity", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a&nbsp;b</div>"}}`, `the narrative is not well-formed XHTML`, false},
		{"narrative with DOCTYPE", `{"resourceType":"Patient","text":{"status":"generated","div":"<!DOCTYPE div><div xmlns=\"http://www.w3.org/1999/xhtml\"/>"}}`, `the narrative must be one <div> element`, false},
		{"narrative malformed", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p></div>"}}`, `the narrative is not well-formed XHTML`, false},
		{"narrative with script namespace", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><s:script xmlns:s=\"urn:s\"/></div>"}}`, `outside the XHTML namespace`, false},
		{"too deep for XML", deep, `nested deeper than 100 XML elements`, false},
		{"too deep for JSON", strings.Repeat("[", 300) + strings.Repeat("]", 300), `nested deeper than 200`, true},
		{"malformed", `{"resourceType":"Patient",}`, `malformed JSON: expected a member name at offset 26`, true},
		{"trailing data", `{"resourceType":"Patient"} {}`, `data after the JSON value`, true},
		{"invalid UTF-8", "{\"resourceType\":\"Patient\",\"gender\":\"\xff\"}", `invalid UTF-8`, true},
		{"lone surrogate", `{"resourceType":"Patient","gender":"\ud800"}`, `unpaired surrogate`, true},
		{"leading zero", `{"resourceType":"Patient","multipleBirthInteger":01}`, `malformed JSON`, true},
		{"empty", ``, `unexpected end of input`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JSONToXML([]byte(tc.in))
			if err == nil {
				t.Fatalf("JSONToXML accepted it: %s", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if errors.Is(err, ErrSyntax) != tc.syntax || errors.Is(err, ErrInvalid) == tc.syntax {
				t.Fatalf("error %q: ErrSyntax %v, want %v", err, errors.Is(err, ErrSyntax), tc.syntax)
			}
		})
	}
}

// TestJSONLeniency: what Go's encoding/json writes for empty fields (null,
// [], "") has no XML form and is left out rather than refused, and an
// exponent decimal is written out in full.
func TestJSONLeniency(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"resourceType":"Patient","id":"","name":[],"gender":null,"birthDate":"","meta":null}`, `<Patient xmlns="http://hl7.org/fhir"/>`},
		{`{"resourceType":"Patient","name":[{"family":"","given":[]}]}`, `<Patient xmlns="http://hl7.org/fhir"><name/></Patient>`},
		{`{"resourceType":"Patient","extension":[{"url":"http://x","valueString":"","valueCode":null}]}`, `<Patient xmlns="http://hl7.org/fhir"><extension url="http://x"/></Patient>`},
		{`{"resourceType":"Location","position":{"longitude":1.5e-7,"latitude":-2.50E+3,"altitude":1e2}}`, `<Location xmlns="http://hl7.org/fhir"><position><longitude value="0.00000015"/><latitude value="-2500"/><altitude value="100"/></position></Location>`},
	}
	for _, tc := range tests {
		got, err := JSONToXML([]byte(tc.in))
		if err != nil {
			t.Errorf("JSONToXML(%s): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("JSONToXML(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestPlainDecimal(t *testing.T) {
	tests := map[string]string{
		"1":         "1",
		"1.50":      "1.50",
		"1.5e-7":    "0.00000015",
		"1.5E+2":    "150",
		"1.25e1":    "12.5",
		"-1e0":      "-1",
		"0e5":       "0",
		"0.0e1":     "0",
		"-0.0012e2": "-0.12",
		"12e-2":     "0.12",
		"3.000e3":   "3000",
		"3.0001e3":  "3000.1",
	}
	for in, want := range tests {
		got, ok := plainDecimal(in)
		if !ok || got != want {
			t.Errorf("plainDecimal(%s) = %s, %v; want %s", in, got, ok, want)
		}
		if !checkDecimal(got) {
			t.Errorf("plainDecimal(%s) = %s is not an STU3 decimal", in, got)
		}
	}
	if _, ok := plainDecimal("1e999"); ok {
		t.Error("plainDecimal(1e999) accepted")
	}
}
