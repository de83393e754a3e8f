package sds

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"sspemu/spinecall"
)

// The FHIR shapes of the SDS API (request/fhir_json_mapper.py), members in
// the real service's order.
type (
	bundle struct {
		ResourceType string        `json:"resourceType"`
		ID           string        `json:"id"`
		Type         string        `json:"type"`
		Total        int           `json:"total"`
		Link         []bundleLink  `json:"link"`
		Entry        []bundleEntry `json:"entry"`
	}
	bundleLink struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	}
	bundleEntry struct {
		FullURL  string       `json:"fullUrl"`
		Resource any          `json:"resource"`
		Search   bundleSearch `json:"search"`
	}
	bundleSearch struct {
		Mode string `json:"mode"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	identifierRef struct {
		Identifier identifier `json:"identifier"`
	}
	extension struct {
		URL            string         `json:"url"`
		ValueReference *identifierRef `json:"valueReference,omitempty"`
	}
	device struct {
		ResourceType string         `json:"resourceType"`
		ID           string         `json:"id"`
		Identifier   []identifier   `json:"identifier,omitempty"`
		Extension    []extension    `json:"extension,omitempty"`
		Owner        *identifierRef `json:"owner,omitempty"`
	}
	coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	codeableConcept struct {
		Coding []coding `json:"coding"`
	}
	endpoint struct {
		ResourceType         string            `json:"resourceType"`
		ID                   string            `json:"id"`
		Status               string            `json:"status"`
		ConnectionType       coding            `json:"connectionType"`
		PayloadType          []codeableConcept `json:"payloadType"`
		Address              string            `json:"address,omitempty"`
		ManagingOrganization *identifierRef    `json:"managingOrganization,omitempty"`
		Identifier           []identifier      `json:"identifier,omitempty"`
		Extension            []extension       `json:"extension,omitempty"`
	}
)

// The extension URLs of the SDS API (request/mapper_urls.py).
const (
	ExtensionInteraction  = "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId"
	ExtensionManufacturer = "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ManufacturingOrganisation"
)

// resourceID gives a record's FHIR id: a UUID, as the real service's, but
// derived from the record's DN so that it is the same on every answer.
func resourceID(e Entry) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(e.DN)).String()
}

func newBundle(resources []any, base, self string) bundle {
	b := bundle{
		ResourceType: "Bundle", ID: uuid.NewString(), Type: "searchset", Total: len(resources),
		Link:  []bundleLink{{Relation: "self", URL: self}},
		Entry: []bundleEntry{},
	}
	for _, r := range resources {
		id := ""
		switch r := r.(type) {
		case device:
			id = r.ID
		case endpoint:
			id = r.ID
		}
		b.Entry = append(b.Entry, bundleEntry{FullURL: base + id, Resource: r, Search: bundleSearch{Mode: "match"}})
	}
	return b
}

func interactionExtension(id string) extension {
	return extension{URL: ExtensionInteraction, ValueReference: &identifierRef{identifier{SystemInteraction, id}}}
}

// deviceResource maps an nhsAs record as the real service does: the ASID
// and the party key as identifiers, the supplier, one extension per
// interaction, and the client organisation as owner.
func deviceResource(e Entry) device {
	d := device{ResourceType: "Device", ID: resourceID(e)}
	if v := e.Value("uniqueIdentifier"); v != "" {
		d.Identifier = append(d.Identifier, identifier{SystemASID, v})
	}
	if v := e.Value("nhsMHSPartyKey"); v != "" {
		d.Identifier = append(d.Identifier, identifier{SystemPartyKey, v})
	}
	if v := e.Value("nhsMhsManufacturerOrg"); v != "" {
		d.Extension = append(d.Extension, extension{URL: ExtensionManufacturer, ValueReference: &identifierRef{identifier{SystemODS, v}}})
	}
	for _, in := range e.Values("nhsAsSvcIA") {
		d.Extension = append(d.Extension, interactionExtension(in))
	}
	if v := e.Value("nhsAsClient"); v != "" {
		d.Owner = &identifierRef{identifier{SystemODS, v}}
	}
	return d
}

// endpointResource maps an nhsMhs record: the service root as address,
// the FQDN, party key, CPA ID and MHS ID as identifiers, the interaction as
// an extension, the practice as managing organisation.
func endpointResource(e Entry) endpoint {
	ep := endpoint{
		ResourceType: "Endpoint", ID: resourceID(e), Status: "active",
		ConnectionType: coding{"http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "hl7-fhir-msg", "HL7 FHIR Messaging"},
		PayloadType:    []codeableConcept{{[]coding{{"http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "any", "Any"}}}},
		Address:        e.Value("nhsMHSEndPoint"),
	}
	if v := e.Value("nhsIDCode"); v != "" {
		ep.ManagingOrganization = &identifierRef{identifier{SystemODS, v}}
	}
	for _, id := range []struct{ system, attr string }{
		{SystemMHSFQDN, "nhsMhsFQDN"}, {SystemPartyKey, "nhsMHSPartyKey"}, {SystemCPAID, "nhsMhsCPAId"}, {SystemMHSID, "uniqueIdentifier"},
	} {
		if v := e.Value(id.attr); v != "" {
			ep.Identifier = append(ep.Identifier, identifier{id.system, v})
		}
	}
	if v := e.Value("nhsMhsSvcIA"); v != "" {
		ep.Extension = append(ep.Extension, interactionExtension(v))
	}
	return ep
}

// The Spine's error codes (Spine-ErrorOrWarningCode-1) the API answers with.
var (
	codeBadRequest             = coding{spineErrorSystem, "BAD_REQUEST", "Bad request"}
	codeNoRecordFound          = coding{spineErrorSystem, "NO_RECORD_FOUND", "No record found"}
	codeNotImplemented         = coding{spineErrorSystem, "NOT_IMPLEMENTED", "Not implemented"}
	codeMissingOrInvalidHeader = coding{spineErrorSystem, "MISSING_OR_INVALID_HEADER", "There is a required header missing or invalid"}
)

const spineErrorSystem = "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1"

type issue struct {
	severity, code string
	coding         coding
	diagnostics    string
}

// badRequestIssue words a 400 as tornado's HTTPError does, which is what
// the real service puts in diagnostics.
func badRequestIssue(msg string) issue {
	return issue{"error", "required", codeBadRequest, fmt.Sprintf("HTTP 400: Bad Request (%s)", msg)}
}

type outcomeJSON struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id,omitempty"`
	Issue        []issueJSON `json:"issue"`
}

type issueJSON struct {
	Severity    string          `json:"severity"`
	Code        string          `json:"code"`
	Details     codeableConcept `json:"details"`
	Diagnostics string          `json:"diagnostics,omitempty"`
}

// writeOutcome writes the real service's OperationOutcome: id = the
// correlation ID, always application/fhir+json.
func writeOutcome(w http.ResponseWriter, status int, id string, is issue) {
	spinecall.Code(w, is.coding.Code)
	body := outcomeJSON{ResourceType: "OperationOutcome", ID: id, Issue: []issueJSON{{
		Severity: is.severity, Code: is.code, Details: codeableConcept{[]coding{is.coding}}, Diagnostics: is.diagnostics,
	}}}
	writeJSON(w, status, mimeFHIRJSON, body)
}

// writeAccessDenied is the API platform's answer to a missing or wrong
// apikey (the proxy's AssignMessage.OAuthPolicyErrorResponse: 401, the R4
// code system with a version, the fault as display).
func writeAccessDenied(w http.ResponseWriter, fault string) {
	type versionedCoding struct {
		System  string `json:"system"`
		Version string `json:"version"`
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	type details struct {
		Coding []versionedCoding `json:"coding"`
	}
	type deniedIssue struct {
		Severity string  `json:"severity"`
		Code     string  `json:"code"`
		Details  details `json:"details"`
	}
	body := struct {
		ResourceType string        `json:"resourceType"`
		Issue        []deniedIssue `json:"issue"`
	}{"OperationOutcome", []deniedIssue{{"error", "forbidden", details{[]versionedCoding{
		{"https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode", "1", "ACCESS_DENIED", fault},
	}}}}}
	spinecall.Code(w, "ACCESS_DENIED")
	writeJSON(w, http.StatusUnauthorized, mimeJSON, body)
}

func writeJSON(w http.ResponseWriter, status int, mime string, v any) {
	w.Header().Set("Content-Type", mime)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
