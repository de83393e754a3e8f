// Package gpconnect holds the GP Connect 1.2.7 domain rules shared by the SSP
// and the demonstrator: the interaction catalogue, JWT claim rules,
// OperationOutcome builders and FHIR MIME rules.
package gpconnect

import (
	"fmt"
	"slices"
	"strings"
)

// URNPrefix starts every GP Connect interaction ID.
const URNPrefix = "urn:nhs:names:services:gpconnect:"

// The interaction groups a registry may name instead of single URNs.
const (
	GroupFoundations  = "foundations"
	GroupAppointments = "appointments"
	GroupStructured   = "structured"
)

// The scopes of requested_scope.
const (
	ScopePatientRead  = "patient/*.read"
	ScopePatientWrite = "patient/*.write"
	ScopeOrgRead      = "organization/*.read"
	ScopeOrgWrite     = "organization/*.write"
)

// The interaction IDs (full URNs) of Foundations, Appointment Management and
// the structured record.
const (
	ReadMetadata        = URNPrefix + "fhir:rest:read:metadata-1"
	ReadPatient         = URNPrefix + "fhir:rest:read:patient-1"
	SearchPatient       = URNPrefix + "fhir:rest:search:patient-1"
	RegisterPatient     = URNPrefix + "fhir:operation:gpc.registerpatient-1"
	ReadPractitioner    = URNPrefix + "fhir:rest:read:practitioner-1"
	SearchPractitioner  = URNPrefix + "fhir:rest:search:practitioner-1"
	ReadOrganization    = URNPrefix + "fhir:rest:read:organization-1"
	SearchOrganization  = URNPrefix + "fhir:rest:search:organization-1"
	ReadLocation        = URNPrefix + "fhir:rest:read:location-1"
	SearchSlot          = URNPrefix + "fhir:rest:search:slot-1"
	ReadAppointment     = URNPrefix + "fhir:rest:read:appointment-1"
	CreateAppointment   = URNPrefix + "fhir:rest:create:appointment-1"
	UpdateAppointment   = URNPrefix + "fhir:rest:update:appointment-1"
	CancelAppointment   = URNPrefix + "fhir:rest:cancel:appointment-1"
	SearchPatientAppts  = URNPrefix + "fhir:rest:search:patient_appointments-1"
	GetStructuredRecord = URNPrefix + "fhir:operation:gpc.getstructuredrecord-1"
)

// Interaction is one row of the catalogue: what a request with this
// Ssp-InteractionID must look like.
type Interaction struct {
	ID     string // full URN
	Name   string // plain words, for reasons and logs
	Method string
	// Path is relative to the service root; segments in braces match one
	// FHIR logical ID ([A-Za-z0-9.-]{1,64}).
	Path  string
	Scope string
	Group string
}

var catalogue = []Interaction{
	{ReadMetadata, "read the capability statement", "GET", "/metadata", ScopeOrgRead, GroupFoundations},
	{ReadPatient, "read a patient", "GET", "/Patient/{id}", ScopePatientRead, GroupFoundations},
	{SearchPatient, "find a patient", "GET", "/Patient", ScopePatientRead, GroupFoundations},
	{RegisterPatient, "register a patient", "POST", "/Patient/$gpc.registerpatient", ScopePatientWrite, GroupFoundations},
	{ReadPractitioner, "read a practitioner", "GET", "/Practitioner/{id}", ScopeOrgRead, GroupFoundations},
	{SearchPractitioner, "find a practitioner", "GET", "/Practitioner", ScopeOrgRead, GroupFoundations},
	{ReadOrganization, "read an organisation", "GET", "/Organization/{id}", ScopeOrgRead, GroupFoundations},
	{SearchOrganization, "find an organisation", "GET", "/Organization", ScopeOrgRead, GroupFoundations},
	{ReadLocation, "read a location", "GET", "/Location/{id}", ScopeOrgRead, GroupFoundations},
	{SearchSlot, "search free slots", "GET", "/Slot", ScopeOrgRead, GroupAppointments},
	{ReadAppointment, "read an appointment", "GET", "/Appointment/{id}", ScopePatientRead, GroupAppointments},
	{CreateAppointment, "book an appointment", "POST", "/Appointment", ScopePatientWrite, GroupAppointments},
	{UpdateAppointment, "amend an appointment", "PUT", "/Appointment/{id}", ScopePatientWrite, GroupAppointments},
	{CancelAppointment, "cancel an appointment", "PUT", "/Appointment/{id}", ScopePatientWrite, GroupAppointments},
	{SearchPatientAppts, "search a patient's appointments", "GET", "/Patient/{id}/Appointment", ScopePatientRead, GroupAppointments},
	{GetStructuredRecord, "get the structured record", "POST", "/Patient/$gpc.getstructuredrecord", ScopePatientRead, GroupStructured},
}

// Interactions returns the whole catalogue in specification order.
func Interactions() []Interaction { return slices.Clone(catalogue) }

// Lookup finds an interaction by its exact URN.
func Lookup(id string) (Interaction, bool) {
	for _, in := range catalogue {
		if in.ID == id {
			return in, true
		}
	}
	return Interaction{}, false
}

// Expand turns a list of URNs and group names into the set of URNs they
// stand for, in catalogue order. An unknown name is an error that names it.
func Expand(names []string) ([]string, error) {
	want := map[string]bool{}
	var bad []string
	for _, n := range names {
		switch n {
		case GroupFoundations, GroupAppointments, GroupStructured:
			for _, in := range catalogue {
				if in.Group == n {
					want[in.ID] = true
				}
			}
		default:
			if _, ok := Lookup(n); !ok {
				bad = append(bad, n)
				continue
			}
			want[n] = true
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unknown interaction or group %q (groups: foundations, appointments, structured; or a full URN starting %s)", strings.Join(bad, `", "`), URNPrefix)
	}
	var out []string
	for _, in := range catalogue {
		if want[in.ID] {
			out = append(out, in.ID)
		}
	}
	return out, nil
}

// MatchesRoute reports whether method and path (relative to the service root,
// without the query) are this interaction's.
func (in Interaction) MatchesRoute(method, path string) bool {
	return in.Method == method && matchPath(in.Path, path)
}

// Route returns the interactions whose verb and path pattern fit the request;
// amend and cancel share one route, so a route may have two.
func Route(method, path string) []Interaction {
	var out []Interaction
	for _, in := range catalogue {
		if in.MatchesRoute(method, path) {
			out = append(out, in)
		}
	}
	return out
}

// RoutesOfPath returns the interactions whose path pattern fits path, of any
// verb; the SSP's CORS preflight lists their methods.
func RoutesOfPath(path string) []Interaction {
	var out []Interaction
	for _, in := range catalogue {
		if matchPath(in.Path, path) {
			out = append(out, in)
		}
	}
	return out
}

func matchPath(pattern, path string) bool {
	ps := strings.Split(pattern, "/")
	xs := strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") {
			if !IsLogicalID(xs[i]) {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}

// IsLogicalID reports whether s is a FHIR STU3 logical ID: 1 to 64 of
// A-Z, a-z, 0-9, '-' and '.'.
func IsLogicalID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
