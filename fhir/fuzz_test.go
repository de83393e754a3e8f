package fhir

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds the corpus (and what it converts to) to a fuzz target.
func seeds(f *testing.F, toXML bool) {
	f.Helper()
	jsons, _ := filepath.Glob(filepath.Join("testdata", "json", "*.json"))
	xmls, _ := filepath.Glob(filepath.Join("testdata", "xml", "*.xml"))
	if len(jsons) == 0 || len(xmls) == 0 {
		f.Fatal("no corpus in testdata")
	}
	for _, p := range jsons {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if !toXML {
			f.Add(b)
			continue
		}
		x, err := JSONToXML(b)
		if err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		f.Add(x)
	}
	for _, p := range xmls {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if toXML {
			f.Add(b)
			continue
		}
		j, err := XMLToJSON(b)
		if err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		f.Add(j)
	}
}

// FuzzXMLToJSON: XMLToJSON never panics, and what it accepts comes back
// unchanged through XML: JSON → XML → JSON gives the same bytes.
func FuzzXMLToJSON(f *testing.F) {
	seeds(f, true)
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><Patient xmlns="http://hl7.org/fhir"/>`))
	f.Add([]byte(`<Patient xmlns="http://hl7.org/fhir"><name><given value="a"/><given id="x"><extension url="u"><valueInteger value="-0"/></extension></given></name></Patient>`))
	f.Add([]byte(`<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><x:div xmlns:x="http://www.w3.org/1999/xhtml"><x:p x:title="t">a<![CDATA[<b>]]></x:p></x:div></text></Patient>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := XMLToJSON(in)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not a *fhir.Error: %v", err, err)
			}
			return
		}
		x, err := JSONToXML(j)
		if err != nil {
			t.Fatalf("XMLToJSON's output is refused by JSONToXML: %v\nJSON: %s", err, j)
		}
		j2, err := XMLToJSON(x)
		if err != nil {
			t.Fatalf("JSONToXML's output is refused by XMLToJSON: %v\nXML: %s", err, x)
		}
		if !bytes.Equal(j, j2) {
			t.Fatalf("not stable:\n first %s\nsecond %s", j, j2)
		}
	})
}

// FuzzJSONToXML: JSONToXML never panics, and what it accepts is stable:
// its XML reads back to JSON that writes the same XML again.
func FuzzJSONToXML(f *testing.F) {
	seeds(f, false)
	f.Add([]byte(`{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"extension":[{"url":"u","valueDecimal":1.5e-3}]}]}]}`))
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"p","part":[{"name":"q","valueBoolean":false}],"resource":{"resourceType":"Slot","status":"free"}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := JSONToXML(in)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not a *fhir.Error: %v", err, err)
			}
			return
		}
		j, err := XMLToJSON(x)
		if err != nil {
			t.Fatalf("JSONToXML's output is refused by XMLToJSON: %v\nXML: %s", err, x)
		}
		x2, err := JSONToXML(j)
		if err != nil {
			t.Fatalf("XMLToJSON's output is refused by JSONToXML: %v\nJSON: %s", err, j)
		}
		if !bytes.Equal(x, x2) {
			t.Fatalf("not stable:\n first %s\nsecond %s", x, x2)
		}
		j2, err := XMLToJSON(x2)
		if err != nil || !bytes.Equal(j, j2) {
			t.Fatalf("JSON not stable (%v):\n first %s\nsecond %s", err, j, j2)
		}
	})
}
