package proxy

import (
	"bytes"
	"encoding/json"
	"strings"

	"sspemu/audit"
	"sspemu/fhir"
	"sspemu/gpconnect"
)

// maxSummarised bounds the request body summariseBody reads: GP Connect's
// POST and PUT bodies (a registration, an appointment) are a few KiB, and
// the SSP has already bounded the body by ssp.max_body_bytes; a body above
// this is summarised by its size class only ("too large").
const maxSummarised = 256 << 10

// The element names and URLs the summary reads (GP Connect 1.2.7: Register
// a patient; CareConnect-GPC-Patient-1; GPConnect-Appointment-1).
const (
	systemNHSNumber        = "https://fhir.nhs.uk/Id/nhs-number"
	extNHSNumberStatus     = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	extRegistrationDetails = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
	extCancellationReason  = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1"
	paramRegisterPatient   = "registerPatient"
	maxListed              = 8 // names, uses and kinds kept per list
)

// bodyJSON is the part of a FHIR resource in JSON the summary reads: a
// Parameters, a Patient or an Appointment. Members whose JSON type varies
// between FHIR versions (a DSTU2 family name is an array) or that only
// count as present are kept raw.
type bodyJSON struct {
	ResourceType string `json:"resourceType"`

	Parameter []struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource"`
	} `json:"parameter"`

	Extension  []extJSON `json:"extension"`
	Identifier []struct {
		System    string    `json:"system"`
		Value     string    `json:"value"`
		Extension []extJSON `json:"extension"`
	} `json:"identifier"`
	Name []struct {
		Use    string          `json:"use"`
		Family json.RawMessage `json:"family"`
		Given  json.RawMessage `json:"given"`
	} `json:"name"`
	Gender    string          `json:"gender"`
	BirthDate json.RawMessage `json:"birthDate"`
	Telecom   []struct {
		System string `json:"system"`
		Use    string `json:"use"`
	} `json:"telecom"`
	Address []struct {
		Use string `json:"use"`
	} `json:"address"`

	Status      string            `json:"status"`
	Slot        []json.RawMessage `json:"slot"`
	Participant []struct {
		Actor struct {
			Reference string `json:"reference"`
		} `json:"actor"`
	} `json:"participant"`
	Start       json.RawMessage `json:"start"`
	End         json.RawMessage `json:"end"`
	Description json.RawMessage `json:"description"`
	Comment     json.RawMessage `json:"comment"`
}

type extJSON struct {
	URL                  string `json:"url"`
	ValueCodeableConcept struct {
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
	} `json:"valueCodeableConcept"`
}

// summariseBody is the audit's summary of a POST or PUT body (nil for
// any other request, or one without a body): its format and resourceType,
// a Parameters' parameter names and its registerPatient Patient's facts,
// an Appointment's facts. It reads untrusted bytes: JSON with
// encoding/json, XML turned into JSON by the fhir codec first; anything
// else gives a summary that says why (Body.Error), never a panic
// (FuzzSummariseBody). It runs after the body is in and before the audit
// record is written, only for POST and PUT, so GET's path does not pay
// for it.
func summariseBody(method, contentType, contentEncoding string, body []byte) *audit.Body {
	if (method != "POST" && method != "PUT") || len(body) == 0 {
		return nil
	}
	b := &audit.Body{}
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff")
	ct := strings.ToLower(contentType)
	switch {
	case strings.Contains(ct, "xml"), !strings.Contains(ct, "json") && len(trimmed) > 0 && trimmed[0] == '<':
		b.Format = "xml"
	case strings.Contains(ct, "json"), len(trimmed) > 0 && trimmed[0] == '{':
		b.Format = "json"
	default:
		b.Error = "neither FHIR JSON nor FHIR XML"
		return b
	}
	if enc := strings.ToLower(strings.TrimSpace(contentEncoding)); enc != "" && enc != "identity" {
		b.Error = "encoded (Content-Encoding): not summarised"
		return b
	}
	if len(body) > maxSummarised {
		b.Error = "too large to summarise"
		return b
	}
	js := body
	if b.Format == "xml" {
		var err error
		if js, err = fhir.XMLToJSON(body); err != nil {
			b.Error = "not FHIR XML"
			return b
		}
	}
	var r bodyJSON
	if err := json.Unmarshal(js, &r); err != nil {
		b.Error = "not FHIR JSON"
		return b
	}
	b.ResourceType = bound(r.ResourceType)
	switch r.ResourceType {
	case "Parameters":
		for _, p := range r.Parameter {
			if len(b.Parameters) < maxListed {
				b.Parameters = append(b.Parameters, bound(p.Name))
			}
			if p.Name != paramRegisterPatient || b.Patient != nil || len(p.Resource) == 0 {
				continue
			}
			var pt bodyJSON
			if json.Unmarshal(p.Resource, &pt) == nil && pt.ResourceType == "Patient" {
				b.Patient = patientFacts(&pt)
			}
		}
	case "Patient":
		b.Patient = patientFacts(&r)
	case "Appointment":
		b.Appointment = appointmentFacts(&r)
	}
	return b
}

// patientFacts are the registration facts of a Patient.
func patientFacts(r *bodyJSON) *audit.BodyPatient {
	p := &audit.BodyPatient{
		Names:     len(r.Name),
		Gender:    cutTo(r.Gender, 16),
		BirthDate: present(r.BirthDate),
		Telecoms:  len(r.Telecom),
		Addresses: len(r.Address),
	}
	for _, id := range r.Identifier {
		if id.System != systemNHSNumber {
			continue
		}
		if p.NHSNumbers++; p.NHSNumbers > 1 {
			continue
		}
		p.NHSNumber = cutTo(id.Value, 20)
		p.NHSNumberValid = gpconnect.ValidNHSNumber(id.Value)
		for _, e := range id.Extension {
			if e.URL == extNHSNumberStatus && len(e.ValueCodeableConcept.Coding) > 0 {
				p.NHSNumberStatus = cutTo(e.ValueCodeableConcept.Coding[0].Code, 16)
			}
		}
	}
	chosen := -1
	for i, n := range r.Name {
		if n.Use == "official" {
			p.Official++
			if chosen < 0 || r.Name[chosen].Use != "official" {
				chosen = i
			}
		} else if chosen < 0 {
			chosen = i
		}
	}
	if chosen >= 0 {
		p.Family, p.Given = present(r.Name[chosen].Family), present(r.Name[chosen].Given)
	}
	for _, t := range r.Telecom {
		if len(p.TelecomUses) < maxListed {
			p.TelecomUses = append(p.TelecomUses, cutTo(t.System, 16)+":"+cutTo(t.Use, 16))
		}
	}
	for _, a := range r.Address {
		if len(p.AddressUses) < maxListed {
			p.AddressUses = append(p.AddressUses, cutTo(a.Use, 16))
		}
	}
	for _, e := range r.Extension {
		if e.URL == extRegistrationDetails {
			p.RegistrationDetails = true
		}
	}
	return p
}

// appointmentFacts are the booking, amendment or cancellation facts of an
// Appointment.
func appointmentFacts(r *bodyJSON) *audit.BodyAppointment {
	a := &audit.BodyAppointment{
		Status:       cutTo(r.Status, 32),
		Slots:        len(r.Slot),
		Participants: len(r.Participant),
		Start:        present(r.Start),
		End:          present(r.End),
		Description:  present(r.Description),
		Comment:      present(r.Comment),
	}
	for _, p := range r.Participant {
		if len(a.ParticipantKinds) < maxListed {
			a.ParticipantKinds = append(a.ParticipantKinds, referenceKind(p.Actor.Reference))
		}
	}
	for _, e := range r.Extension {
		if e.URL == extCancellationReason {
			a.CancellationReason = true
		}
	}
	return a
}

// referenceKind is the resource type a reference names (Patient/1, or an
// absolute URL ending in Patient/1): Patient, Practitioner or Location,
// "other" for any other, "none" for no reference.
func referenceKind(ref string) string {
	if ref == "" {
		return "none"
	}
	parts := strings.Split(strings.TrimSuffix(ref, "/"), "/")
	for i := len(parts) - 2; i >= 0 && i >= len(parts)-4; i-- {
		switch parts[i] {
		case "Patient", "Practitioner", "Location":
			return parts[i]
		}
	}
	return "other"
}

// present reports a member that is there with content: not null, not an
// empty string, array or object.
func present(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	switch string(v) {
	case "", "null", `""`, "[]", "{}":
		return false
	}
	if v[0] == '[' {
		var xs []json.RawMessage
		if json.Unmarshal(v, &xs) == nil {
			for _, x := range xs {
				if present(x) {
					return true
				}
			}
			return false
		}
	}
	return true
}
