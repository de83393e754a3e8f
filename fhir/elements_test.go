package fhir

import "testing"

func TestTypeDefines(t *testing.T) {
	tests := []struct {
		typ, member string
		want        bool
	}{
		{"Organization", "identifier", true},
		{"Organization", "meta", true}, // DomainResource
		{"Organization", "modifierExtension", true},
		{"Organization", "gender", false},
		{"Organization", "resourceType", false},
		{"Practitioner", "name", true},
		{"Practitioner", "Name", false}, // member names are exact
		{"Identifier", "system", true},
		{"Identifier", "label", false},
		{"HumanName", "family", true},
		{"HumanName", "nickname", false},
		{"Extension", "valueString", true}, // a choice's concrete name
		{"Extension", "value", false},
	}
	for _, tt := range tests {
		typ, ok := TypeOf(tt.typ)
		if !ok || typ.Name() != tt.typ {
			t.Fatalf("TypeOf(%q) = %q, %v", tt.typ, typ.Name(), ok)
		}
		if got := typ.Defines(tt.member); got != tt.want {
			t.Errorf("%s.Defines(%q) = %v, want %v", tt.typ, tt.member, got, tt.want)
		}
	}
	for _, name := range []string{"Device", "string", "Patient.contact", ""} {
		if typ, ok := TypeOf(name); ok || typ.Defines("id") {
			t.Errorf("TypeOf(%q) found a type outside the codec's resources and datatypes", name)
		}
	}
}
