package pds

// The R4 UK Core shapes of PDS's Patient, members in the order of the PDS
// sandbox's examples.
type (
	patientJSON struct {
		ResourceType        string          `json:"resourceType"`
		ID                  string          `json:"id"`
		Identifier          []nhsNumberJSON `json:"identifier"`
		Meta                metaJSON        `json:"meta"`
		Name                []nameJSON      `json:"name,omitempty"`
		Gender              string          `json:"gender,omitempty"`
		BirthDate           string          `json:"birthDate,omitempty"`
		DeceasedDateTime    string          `json:"deceasedDateTime,omitempty"`
		Address             []addressJSON   `json:"address,omitempty"`
		Telecom             []telecomJSON   `json:"telecom,omitempty"`
		GeneralPractitioner []practiceJSON  `json:"generalPractitioner,omitempty"`
		Extension           []extensionJSON `json:"extension,omitempty"`
	}
	nhsNumberJSON struct {
		System    string          `json:"system"`
		Value     string          `json:"value"`
		Extension []extensionJSON `json:"extension"`
	}
	metaJSON struct {
		VersionID string       `json:"versionId"`
		Security  []codingJSON `json:"security"`
	}
	nameJSON struct {
		Use    string   `json:"use"`
		Family string   `json:"family,omitempty"`
		Given  []string `json:"given,omitempty"`
		Prefix []string `json:"prefix,omitempty"`
	}
	addressJSON struct {
		Use        string   `json:"use"`
		Line       []string `json:"line,omitempty"`
		PostalCode string   `json:"postalCode,omitempty"`
	}
	telecomJSON struct {
		System string `json:"system"`
		Value  string `json:"value"`
		Use    string `json:"use,omitempty"`
	}
	practiceJSON struct {
		Type       string      `json:"type"`
		Identifier systemValue `json:"identifier"`
	}
	systemValue struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	extensionJSON struct {
		URL                  string          `json:"url"`
		Extension            []extensionJSON `json:"extension,omitempty"`
		ValueCodeableConcept *codeableJSON   `json:"valueCodeableConcept,omitempty"`
		ValueDateTime        string          `json:"valueDateTime,omitempty"`
	}
)

// The systems and extensions of a PDS Patient.
const (
	SystemNHSNumber  = "https://fhir.nhs.uk/Id/nhs-number"
	SystemODS        = "https://fhir.nhs.uk/Id/ods-organization-code"
	systemConfid     = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	extVerification  = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
	codeVerification = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus"
	extDeath         = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus"
	codeDeath        = "https://fhir.hl7.org.uk/CodeSystem/UKCore-DeathNotificationStatus"
)

// resource builds the Patient PDS answers with. A restricted patient is
// marked R in meta.security and loses its address, telecom and practice,
// as PDS removes them.
func resource(p Patient) patientJSON {
	res := patientJSON{
		ResourceType: "Patient", ID: p.NHSNumber,
		Identifier: []nhsNumberJSON{{SystemNHSNumber, p.NHSNumber, []extensionJSON{{
			URL:                  extVerification,
			ValueCodeableConcept: &codeableJSON{[]codingJSON{{codeVerification, "1.0.0", "01", "Number present and verified"}}},
		}}}},
		Meta:      metaJSON{VersionID: "1", Security: []codingJSON{{systemConfid, "", "U", "unrestricted"}}},
		Gender:    normGender(p.Gender),
		BirthDate: p.BirthDate,
	}
	if p.Family != "" || len(p.Given) > 0 {
		res.Name = []nameJSON{{Use: "usual", Family: p.Family, Given: p.Given, Prefix: p.Prefix}}
	}
	if p.DeceasedDateTime != "" {
		res.DeceasedDateTime = p.DeceasedDateTime
		res.Extension = append(res.Extension, extensionJSON{URL: extDeath, Extension: []extensionJSON{
			{URL: "deathNotificationStatus", ValueCodeableConcept: &codeableJSON{[]codingJSON{{codeDeath, "1.0.0", "2", "Formal - death notice received from Registrar of Deaths"}}}},
			{URL: "systemEffectiveDate", ValueDateTime: p.DeceasedDateTime},
		}})
	}
	if p.Restricted {
		res.Meta.Security = []codingJSON{{systemConfid, "", "R", "restricted"}}
		return res
	}
	if p.Address != nil {
		res.Address = []addressJSON{{Use: "home", Line: p.Address.Lines, PostalCode: p.Address.PostalCode}}
	}
	for _, t := range p.Telecom {
		res.Telecom = append(res.Telecom, telecomJSON{t.System, t.Value, t.Use})
	}
	if p.PracticeODS != "" {
		res.GeneralPractitioner = []practiceJSON{{Type: "Organization", Identifier: systemValue{SystemODS, p.PracticeODS}}}
	}
	return res
}
