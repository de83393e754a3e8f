// Package fhir holds the FHIR STU3 pieces that every part of sspemu shares:
// the general-purpose datatypes and the JSON ⇄ XML codec, so that the SSP's
// JWT rules, the token command and the practices read and write one shape.
//
// The codec (JSONToXML, XMLToJSON) walks a table of the STU3 types,
// stu3_gen.go, generated from the official STU3 StructureDefinitions
// (profiles/stu3/profiles-types.json and profiles-resources.json in the npm
// package fhir@3.3.1, the package that also ships fhir-single.xsd) by
// internal/gen. That input is not in the repository. To regenerate the table,
// after changing the generator or its list of resources:
//
//	go generate ./fhir
//
// which runs scripts/fhir-xsd (it fetches the npm package into
// ~/.cache/sspemu/fhir-3.3.1 and installs xmllint if they are missing, so it
// needs npm and the registries the first time) and then internal/gen.
// internal/gen's test fails when the committed table is not what the
// generator writes. Package fhirtest validates XML against fhir-single.xsd
// in any package's tests.
package fhir

// The datatypes below follow the STU3 definitions (http://hl7.org/fhir/STU3/datatypes.html).
// Members are those GP Connect 1.2.7 reads or writes; JSON member order is the
// STU3 element order, so that encoding/json writes resources in that order.
// Where a type carries the STU3 Element members id and extension, it is
// because a request decoder refusing unknown members must accept them.

// Meta is a resource's metadata.
type Meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Security    []Coding `json:"security,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
}

// Coding is a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept given by codings and/or text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Period is a time range; either end may be open.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Reference points at another resource, by literal reference, by identifier
// (STU3 allows both) and with an optional display text.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is a business identifier: a system and a value.
type Identifier struct {
	ID        string           `json:"id,omitempty"`
	Extension []Extension      `json:"extension,omitempty"`
	Use       string           `json:"use,omitempty"`
	Type      *CodeableConcept `json:"type,omitempty"`
	System    string           `json:"system,omitempty"`
	Value     string           `json:"value,omitempty"`
	Period    *Period          `json:"period,omitempty"`
	Assigner  *Reference       `json:"assigner,omitempty"`
}

// HumanName is a person's name.
type HumanName struct {
	ID        string      `json:"id,omitempty"`
	Extension []Extension `json:"extension,omitempty"`
	Use       string      `json:"use,omitempty"`
	Text      string      `json:"text,omitempty"`
	Family    string      `json:"family,omitempty"`
	Given     []string    `json:"given,omitempty"`
	Prefix    []string    `json:"prefix,omitempty"`
	Suffix    []string    `json:"suffix,omitempty"`
	Period    *Period     `json:"period,omitempty"`
}

// ContactPoint is a phone number, email address or similar.
type ContactPoint struct {
	System string  `json:"system,omitempty"`
	Value  string  `json:"value,omitempty"`
	Use    string  `json:"use,omitempty"`
	Rank   int     `json:"rank,omitempty"`
	Period *Period `json:"period,omitempty"`
}

// Address is a postal address.
type Address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Text       string   `json:"text,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
	Period     *Period  `json:"period,omitempty"`
}

// Narrative is a resource's human-readable summary: status and an XHTML div.
type Narrative struct {
	Status string `json:"status"`
	Div    string `json:"div"`
}

// Extension is an STU3 extension with the value types GP Connect uses.
// At most one value member is set.
type Extension struct {
	URL                  string           `json:"url"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueURI             string           `json:"valueUri,omitempty"`
	ValueCoding          *Coding          `json:"valueCoding,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueIdentifier      *Identifier      `json:"valueIdentifier,omitempty"`
	ValuePeriod          *Period          `json:"valuePeriod,omitempty"`
	ValueReference       *Reference       `json:"valueReference,omitempty"`
	Extension            []Extension      `json:"extension,omitempty"`
}

// FindExtension returns the first extension with the given URL, or nil.
func FindExtension(exts []Extension, url string) *Extension {
	for i := range exts {
		if exts[i].URL == url {
			return &exts[i]
		}
	}
	return nil
}
