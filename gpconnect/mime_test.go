package gpconnect

import "testing"

func TestFormatContentType(t *testing.T) {
	if got := FormatJSON.ContentType(); got != "application/fhir+json;charset=utf-8" {
		t.Errorf("json: %q", got)
	}
	if got := FormatXML.ContentType(); got != "application/fhir+xml;charset=utf-8" {
		t.Errorf("xml: %q", got)
	}
}

func TestNegotiateResponse(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		query, accept, ctype string
		want                 Format
		ok                   bool
	}{
		{"nothing", "", "", "", FormatJSON, true},
		{"format json", "_format=json", "", "", FormatJSON, true},
		{"format xml", "_format=xml", "", "", FormatXML, true},
		{"format full xml unencoded plus", "_format=application/fhir+xml", "", "", FormatXML, true},
		{"format full xml encoded", "_format=application%2Ffhir%2Bxml", "", "", FormatXML, true},
		{"format with charset", "_format=application/fhir+json;charset=utf-8", "", "", FormatJSON, true},
		{"format beats accept", "a=1&_format=xml", MIMEJSON, "", FormatXML, true},
		{"format unsupported", "_format=text/html", MIMEXML, "", FormatXML, false},
		{"format unsupported nothing else", "_format=application/json", "", "", FormatJSON, false},
		{"format empty ignored", "_format=", MIMEXML, "", FormatXML, true},
		{"accept xml", "", MIMEXML, "", FormatXML, true},
		{"accept xml charset", "", "application/fhir+xml;charset=utf-8", "", FormatXML, true},
		{"accept wrong charset", "", "application/fhir+xml;charset=latin1", "", FormatJSON, false},
		{"accept beats content type", "", MIMEJSON, MIMEXML, FormatJSON, true},
		{"accept list q", "", "application/fhir+json;q=0.5, application/fhir+xml", "", FormatXML, true},
		{"accept q zero", "", "application/fhir+xml;q=0, application/fhir+json;q=0.1", "", FormatJSON, true},
		{"accept wildcard falls through", "", "*/*", MIMEXML, FormatXML, true},
		{"accept wildcard alone", "", "*/*", "", FormatJSON, true},
		{"accept unsupported", "", "application/json", "", FormatJSON, false},
		{"accept unsupported falls back for body", "", "text/html", MIMEXML, FormatXML, false},
		{"accept dstu2 type", "", "application/xml+fhir", "", FormatJSON, false},
		{"content type xml", "", "", MIMEXML + ";charset=utf-8", FormatXML, true},
		{"content type unsupported", "", "", "text/plain", FormatJSON, false},
		{"accept empty", "", "   ", MIMEXML, FormatXML, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := NegotiateResponse(tc.query, tc.accept, tc.ctype)
			if f != tc.want || ok != tc.ok {
				t.Errorf("NegotiateResponse(%q, %q, %q) = %v, %v; want %v, %v", tc.query, tc.accept, tc.ctype, f, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAcceptableBody(t *testing.T) {
	for _, tc := range []struct {
		ctype string
		want  Format
		ok    bool
	}{
		{MIMEJSON, FormatJSON, true},
		{MIMEXML, FormatXML, true},
		{"application/fhir+json;charset=utf-8", FormatJSON, true},
		{"application/fhir+json; charset=UTF-8", FormatJSON, true},
		{"application/fhir+json;charset=utf-16", FormatJSON, false},
		{"application/fhir+json;q=1", FormatJSON, false},
		{"application/json", FormatJSON, false},
		{"json", FormatJSON, false},
		{"", FormatJSON, false},
	} {
		f, ok := AcceptableBody(tc.ctype)
		if ok != tc.ok || (ok && f != tc.want) {
			t.Errorf("AcceptableBody(%q) = %v, %v; want %v, %v", tc.ctype, f, ok, tc.want, tc.ok)
		}
	}
}
