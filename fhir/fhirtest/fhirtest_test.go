package fhirtest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what a check reports instead of
// failing the real test, so that the check itself can be tested.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}

func TestValidateXML(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"valid", `<Patient xmlns="http://hl7.org/fhir"><id value="1"/><gender value="male"/></Patient>`, ""},
		{"unknown element", `<Patient xmlns="http://hl7.org/fhir"><nickname value="x"/></Patient>`, "nickname"},
		{"out of order", `<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><id value="1"/></Patient>`, "{http://hl7.org/fhir}id': This element is not expected"},
		{"empty value", `<Patient xmlns="http://hl7.org/fhir"><gender value=""/></Patient>`, "gender"},
		{"not well-formed", `<Patient xmlns="http://hl7.org/fhir">`, "Premature end of data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			ValidateXML(r, []byte(tc.doc))
			switch {
			case tc.want == "" && len(r.errors) > 0:
				t.Fatalf("valid document refused: %v", r.errors)
			case tc.want != "" && len(r.errors) == 0:
				t.Fatalf("invalid document accepted")
			case tc.want != "" && !strings.Contains(r.errors[0], tc.want):
				t.Fatalf("report %q does not say %q", r.errors[0], tc.want)
			}
		})
	}
}
