package gpconnect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// The coding systems and profile of the two OperationOutcome shapes.
const (
	// SSPCodingSystem codes the SSP's own refusals (HTTP status as code).
	SSPCodingSystem = "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0"
	// SpineCodingSystem is what the published SSP 405 example uses instead.
	SpineCodingSystem = "https://fhir.nhs.uk/StructureDefinition/spine-operationoutcome-1"
	// ProviderCodingSystem is the URL of the Spine-ErrorOrWarningCode-1
	// CodeSystem. Some spec examples write .../STU3/ValueSet/... instead.
	ProviderCodingSystem = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"
	// OutcomeProfile is the meta.profile of every provider error.
	OutcomeProfile = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
)

// The Spine error codes a GP Connect 1.2.7 provider answers with.
const (
	CodeBadRequest              = "BAD_REQUEST"
	CodeInvalidIdentifierSystem = "INVALID_IDENTIFIER_SYSTEM"
	CodeInvalidIdentifierValue  = "INVALID_IDENTIFIER_VALUE"
	CodeInvalidNHSNumber        = "INVALID_NHS_NUMBER"
	CodeAccessDenied            = "ACCESS_DENIED"
	CodeNoPatientConsent        = "NO_PATIENT_CONSENT"
	CodePatientNotFound         = "PATIENT_NOT_FOUND"
	CodePractitionerNotFound    = "PRACTITIONER_NOT_FOUND"
	CodeOrganisationNotFound    = "ORGANISATION_NOT_FOUND"
	CodeNoRecordFound           = "NO_RECORD_FOUND"
	CodeDuplicateRejected       = "DUPLICATE_REJECTED"
	// CodeFHIRConstraintViolation answers an amend or cancel whose If-Match
	// names a version that is no longer the current one (409).
	CodeFHIRConstraintViolation = "FHIR_CONSTRAINT_VIOLATION"
	CodeInvalidResource         = "INVALID_RESOURCE"
	CodeInvalidParameter        = "INVALID_PARAMETER"
	CodeReferenceNotFound       = "REFERENCE_NOT_FOUND"
	CodeInternalServerError     = "INTERNAL_SERVER_ERROR"
	CodeNotImplemented          = "NOT_IMPLEMENTED"
	CodeUnsupportedMediaType    = "UNSUPPORTED_MEDIA_TYPE"

	// CodeInvalidPatientDemographics is Register Patient's refusal when PDS
	// does not hold the NHS number, its record does not verify, or it is a
	// deceased or sensitive patient's.
	CodeInvalidPatientDemographics = "INVALID_PATIENT_DEMOGRAPHICS"
)

// providerCode is one row of the error table: HTTP status, FHIR issue type
// and the display text of Spine-ErrorOrWarningCode-1 (version 1.6.0).
type providerCode struct {
	status    int
	issueCode string
	display   string
}

// providerCodes holds the GP Connect 1.2.7 error-handling table. Displays are
// the CodeSystem's; ACCESS_DENIED is spelt with an underscore as GP Connect
// uses it (the CodeSystem lists "ACCESS DENIED"). INTERNAL_SERVER_ERROR uses
// issue type exception, as the spec's example does.
var providerCodes = map[string]providerCode{
	CodeBadRequest:              {400, "invalid", "Bad request"},
	CodeInvalidIdentifierSystem: {400, "value", "Invalid identifier system"},
	CodeInvalidIdentifierValue:  {400, "value", "Invalid identifier value"},
	CodeInvalidNHSNumber:        {400, "value", "Invalid NHS number"},
	CodeAccessDenied:            {403, "forbidden", "Access has been denied to process this request"},
	CodeNoPatientConsent:        {403, "forbidden", "Patient has not provided consent to share data"},
	CodePatientNotFound:         {404, "not-found", "Patient not found"},
	CodePractitionerNotFound:    {404, "not-found", "Practitioner not found"},
	CodeOrganisationNotFound:    {404, "not-found", "Organisation not found"},
	CodeNoRecordFound:           {404, "not-found", "No record found"},
	CodeDuplicateRejected:       {409, "duplicate", "Create would lead to creation of a duplicate resource"},
	CodeFHIRConstraintViolation: {409, "conflict", "FHIR constraint violated"},
	CodeInvalidResource:         {422, "invalid", "Invalid validation of resource"},
	CodeInvalidParameter:        {422, "invalid", "Invalid parameter"},
	CodeReferenceNotFound:       {422, "invalid", "Reference not found"},
	CodeInternalServerError:     {500, "exception", "Unexpected internal server error"},
	CodeNotImplemented:          {501, "not-supported", "Not implemented"},
	CodeUnsupportedMediaType:    {415, "not-supported", "Unsupported media type"},

	CodeInvalidPatientDemographics: {400, "business-rule", "Invalid patient demographics"},
}

// ProviderCodes lists the provider error codes of the table, ordered by
// status and then by code, so tools (the faults rule checker) can offer the
// codes of one status.
func ProviderCodes() []string {
	codes := slices.Collect(maps.Keys(providerCodes))
	slices.SortFunc(codes, func(a, b string) int {
		return cmp.Or(cmp.Compare(providerCodes[a].status, providerCodes[b].status), strings.Compare(a, b))
	})
	return codes
}

// ProviderStatus returns the HTTP status the specification pairs with a
// provider error code, or 0 for a code it does not know.
func ProviderStatus(code string) int {
	return providerCodes[code].status
}

// Outcome is one FHIR STU3 OperationOutcome with a single issue: all that
// the SSP and GP Connect providers ever send.
type Outcome struct {
	ID          string // empty: Marshal makes a new UUID
	Profile     string // meta.profile; empty for the SSP's own bodies
	Severity    string
	IssueCode   string
	System      string
	Code        string
	Display     string
	Diagnostics string
}

// SSPOutcome builds the body of one of the SSP's own refusals: issue type by
// HTTP status, coding code = the status, display = diagnostics = token. The
// 405 body follows its published example: severity fatal, coding system
// SpineCodingSystem and no diagnostics; its display defaults to
// "405: Method Not Allowed". 504 uses issue type transient, as the
// specification's SSP table says.
func SSPOutcome(status int, token string) Outcome {
	o := Outcome{
		Severity:    "error",
		IssueCode:   sspIssueCode(status),
		System:      SSPCodingSystem,
		Code:        strconv.Itoa(status),
		Display:     token,
		Diagnostics: token,
	}
	if status == http.StatusMethodNotAllowed {
		o.Severity = "fatal"
		o.System = SpineCodingSystem
		o.Diagnostics = ""
		if o.Display == "" {
			o.Display = "405: Method Not Allowed"
		}
	}
	return o
}

func sspIssueCode(status int) string {
	switch status {
	case 400:
		return "invalid"
	case 403:
		return "forbidden"
	case 405, 415:
		return "not-supported"
	case 502, 504:
		return "transient"
	case 495, 496:
		return "security"
	}
	if status >= 500 {
		return "exception"
	}
	return "processing"
}

// ProviderOutcome builds a GP Connect provider error: profile
// GPConnect-OperationOutcome-1, severity error, issue type and display from
// the specification's table for code. A code the table lacks gets an issue
// type from status and the code itself as display.
func ProviderOutcome(status int, code, diagnostics string) Outcome {
	pc, ok := providerCodes[code]
	if !ok {
		pc = providerCode{status, providerIssueCode(status), code}
	}
	return Outcome{
		Profile:     OutcomeProfile,
		Severity:    "error",
		IssueCode:   pc.issueCode,
		System:      ProviderCodingSystem,
		Code:        code,
		Display:     pc.display,
		Diagnostics: diagnostics,
	}
}

func providerIssueCode(status int) string {
	switch status {
	case 400, 422:
		return "invalid"
	case 403:
		return "forbidden"
	case 404:
		return "not-found"
	case 409:
		return "duplicate"
	case 415, 501:
		return "not-supported"
	}
	if status >= 500 {
		return "exception"
	}
	return "processing"
}

// sspShape reports whether o is one of the SSP's own bodies, whose JSON
// follows the member order of the SSP examples rather than FHIR's.
func (o Outcome) sspShape() bool {
	return o.Profile == "" && (o.System == SSPCodingSystem || o.System == SpineCodingSystem)
}

// Marshal renders o as FHIR STU3 JSON (two-space indent) or XML. JSON member
// order is fixed: the SSP shape uses the order of the published SSP examples
// (code before severity; coding code, display, system; the 405 example's
// code, system, display), the provider shape the order of the GP Connect
// examples (severity, code; coding system, code, display). XML always uses
// the element order FHIR requires. An empty ID becomes a new UUID.
func (o Outcome) Marshal(f Format) []byte {
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	if f == FormatXML {
		return o.marshalXML()
	}
	return o.marshalJSON()
}

func (o Outcome) marshalJSON() []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"OperationOutcome","id":`)
	b.Write(jsonString(o.ID))
	if o.Profile != "" {
		b.WriteString(`,"meta":{"profile":[`)
		b.Write(jsonString(o.Profile))
		b.WriteString(`]}`)
	}
	b.WriteString(`,"issue":[{`)
	sev := []string{"severity", o.Severity, "code", o.IssueCode}
	if o.sspShape() {
		sev = []string{"code", o.IssueCode, "severity", o.Severity}
	}
	writeMembers(&b, sev...)
	if o.System != "" || o.Code != "" || o.Display != "" {
		var coding []string
		switch {
		case o.System == SpineCodingSystem && o.Profile == "":
			coding = []string{"code", o.Code, "system", o.System, "display", o.Display}
		case o.sspShape():
			coding = []string{"code", o.Code, "display", o.Display, "system", o.System}
		default:
			coding = []string{"system", o.System, "code", o.Code, "display", o.Display}
		}
		b.WriteString(`,"details":{"coding":[{`)
		writeMembers(&b, coding...)
		b.WriteString(`}]}`)
	}
	if o.Diagnostics != "" {
		b.WriteString(`,"diagnostics":`)
		b.Write(jsonString(o.Diagnostics))
	}
	b.WriteString(`}]}`)
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		// Unreachable: every value above went through jsonString.
		return b.Bytes()
	}
	return out.Bytes()
}

// writeMembers writes "k":"v" pairs, leaving out empty values.
func writeMembers(b *bytes.Buffer, kv ...string) {
	first := true
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonString(kv[i]))
		b.WriteByte(':')
		b.Write(jsonString(kv[i+1]))
	}
}

// jsonString encodes s as a JSON string without HTML escaping, so URLs in
// tokens keep their '&'.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (o Outcome) marshalXML() []byte {
	var b bytes.Buffer
	b.WriteString(`<OperationOutcome xmlns="http://hl7.org/fhir">` + "\n")
	xmlValue(&b, 1, "id", o.ID)
	if o.Profile != "" {
		b.WriteString("  <meta>\n")
		xmlValue(&b, 2, "profile", o.Profile)
		b.WriteString("  </meta>\n")
	}
	b.WriteString("  <issue>\n")
	xmlValue(&b, 2, "severity", o.Severity)
	xmlValue(&b, 2, "code", o.IssueCode)
	if o.System != "" || o.Code != "" || o.Display != "" {
		b.WriteString("    <details>\n      <coding>\n")
		xmlValue(&b, 4, "system", o.System)
		xmlValue(&b, 4, "code", o.Code)
		xmlValue(&b, 4, "display", o.Display)
		b.WriteString("      </coding>\n    </details>\n")
	}
	xmlValue(&b, 2, "diagnostics", o.Diagnostics)
	b.WriteString("  </issue>\n</OperationOutcome>")
	return b.Bytes()
}

// xmlValue writes a FHIR primitive element <name value="v"/>, skipping empty
// values. xml.EscapeText also escapes quotes and replaces characters XML
// cannot carry.
func xmlValue(b *bytes.Buffer, depth int, name, v string) {
	if v == "" {
		return
	}
	for range depth {
		b.WriteString("  ")
	}
	b.WriteString("<" + name + ` value="`)
	_ = xml.EscapeText(b, []byte(v)) // writing to a bytes.Buffer cannot fail
	b.WriteString(`"/>` + "\n")
}

// WriteOutcome sends o as the whole response: Content-Type for f,
// Cache-Control: no-store (every GP Connect response carries it), status and
// body.
func WriteOutcome(w http.ResponseWriter, f Format, status int, o Outcome) {
	body := o.Marshal(f)
	h := w.Header()
	h.Set("Content-Type", f.ContentType())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client going away is not ours to report
}
