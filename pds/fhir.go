package pds

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"sspemu/gpconnect"
	"sspemu/spinecall"
)

// BasePath is where the PDS FHIR API lives, as on api.service.nhs.uk.
const BasePath = "/personal-demographics/FHIR/R4"

const mimeFHIRJSON = "application/fhir+json"

// Options configure a Service.
type Options struct {
	// Source gives the practices' patients; nil means none yet (SetSource
	// may give it later).
	Source Source
	// Practice is the ODS code PDS's own registered test patients name as
	// their practice.
	Practice string
	// Now is the clock of search Bundles' timestamps; nil means time.Now.
	Now func() time.Time
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Observe is told of each request once answered (the live console);
	// nil tells nobody.
	Observe spinecall.Observer
}

// Service is the PDS FHIR API.
type Service struct {
	source     atomic.Pointer[Source]
	own        []Patient
	superseded map[string]string
	now        func() time.Time
	log        *slog.Logger
	obs        spinecall.Observer
}

// New builds the service.
func New(opt Options) *Service {
	s := &Service{own: append(testPatients(opt.Practice), Unregistered()...), superseded: superseded(), now: opt.Now, log: opt.Logger, obs: opt.Observe}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.SetSource(opt.Source)
	return s
}

// SetSource replaces the practices' patients, for a stack whose practices
// start after PDS; nil leaves only the test patients.
func (s *Service) SetSource(src Source) {
	if src == nil {
		s.source.Store(nil)
		return
	}
	s.source.Store(&src)
}

// patients is everyone PDS holds now: the practices' patients, then the
// test patients whose numbers no practice uses.
func (s *Service) patients() []Patient {
	var out []Patient
	seen := map[string]bool{}
	if src := s.source.Load(); src != nil {
		for _, p := range (*src).Patients() {
			if !seen[p.NHSNumber] {
				seen[p.NHSNumber] = true
				out = append(out, p.clone())
			}
		}
	}
	for _, p := range s.own {
		if !seen[p.NHSNumber] {
			out = append(out, p.clone())
		}
	}
	return out
}

// Patient finds the record an NHS number answers with: a superseded number
// answers its replacement's record.
func (s *Service) Patient(nhs string) (Patient, bool) {
	if to, ok := s.superseded[nhs]; ok {
		nhs = to
	}
	for _, p := range s.patients() {
		if p.NHSNumber == nhs {
			return p, true
		}
	}
	return Patient{}, false
}

// requestIDPattern is the X-Request-ID rule of the PDS specification.
var requestIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler serves GET BasePath/Patient/{nhs number} and the search GET
// BasePath/Patient?family=...&birthdate=..., in the order of the PDS
// sandbox:
//   - a path other than these: 404; another method: 405 with Allow: GET
//     (this PDS retrieves and searches; it does not create or update);
//   - X-Request-ID missing: 400 MISSING_VALUE; not a UUID: 400
//     INVALID_VALUE;
//   - an Authorization header that is not "Bearer <token>": 401
//     ACCESS_DENIED (no header is accepted, as in the sandbox: there is no
//     OAuth server here);
//   - then the retrieval or the search (search.go).
//
// X-Request-ID and X-Correlation-ID are mirrored on every answer.
func (s *Service) Handler() http.Handler {
	return spinecall.Observe(spinecall.PDS, s.obs, http.HandlerFunc(s.serve))
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	for _, h := range []string{"X-Request-ID", "X-Correlation-ID"} {
		if v := r.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, BasePath+"/Patient")
	id, isRead := strings.CutPrefix(rest, "/")
	if !ok || (rest != "" && !isRead) || strings.Contains(id, "/") {
		writeOutcome(w, http.StatusNotFound, outcomeIssue{"error", "not-found", "RESOURCE_NOT_FOUND", "Resource not found",
			"this PDS serves GET " + BasePath + "/Patient/{NHS number} and GET " + BasePath + "/Patient?{search parameters}"})
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeOutcome(w, http.StatusMethodNotAllowed, outcomeIssue{"error", "processing", "UNSUPPORTED_SERVICE", "Unsupported Service",
			"sspemu's PDS retrieves and searches patients only (GET); " + r.Method + " is not supported"})
		return
	}
	rid := r.Header.Get("X-Request-ID")
	switch {
	case rid == "":
		writeOutcome(w, http.StatusBadRequest, missingValue("Invalid request with error - X-Request-ID header must be supplied to access this resource"))
		return
	case !requestIDPattern.MatchString(rid):
		writeOutcome(w, http.StatusBadRequest, invalidValue(fmt.Sprintf("Invalid value - '%s' in header 'X-Request-ID'", rid)))
		return
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, _ := strings.Cut(auth, " ")
		if scheme != "Bearer" || strings.TrimSpace(token) == "" || strings.Contains(token, " ") {
			writeOutcome(w, http.StatusUnauthorized, outcomeIssue{"error", "forbidden", "ACCESS_DENIED", "Access Denied - Unauthorised", "Missing access token"})
			return
		}
	}
	if !isRead {
		s.search(w, r)
		return
	}
	s.read(w, id)
}

func (s *Service) read(w http.ResponseWriter, id string) {
	if id == "" {
		writeOutcome(w, http.StatusBadRequest, outcomeIssue{"error", "processing", "UNSUPPORTED_SERVICE", "Unsupported Service", "Missing NHS number"})
		return
	}
	if !gpconnect.ValidNHSNumber(id) {
		writeOutcome(w, http.StatusBadRequest, outcomeIssue{"error", "value", "INVALID_RESOURCE_ID", "Resource Id is invalid", ""})
		return
	}
	p, ok := s.Patient(id)
	if !ok {
		writeOutcome(w, http.StatusNotFound, outcomeIssue{"information", "not-found", "RESOURCE_NOT_FOUND", "Resource not found", ""})
		return
	}
	s.log.Debug("pds read", "nhs_number", id, "answered", p.NHSNumber)
	spinecall.Results(w, 1)
	pr := patientRecord(p)
	if p.NHSNumber != id {
		pr.Requested = id
	}
	spinecall.Facts(w, "", nil, []spinecall.PatientRecord{pr})
	w.Header().Set("ETag", `W/"1"`)
	writeJSON(w, http.StatusOK, resource(p))
}

// outcomeIssue is one PDS error: the Spine code of the R4 code system.
type outcomeIssue struct {
	severity, code, spineCode, display, diagnostics string
}

func missingValue(diag string) outcomeIssue {
	return outcomeIssue{"error", "required", "MISSING_VALUE", "Required value is missing", diag}
}

func invalidValue(diag string) outcomeIssue {
	return outcomeIssue{"error", "value", "INVALID_VALUE", "Provided value is invalid", diag}
}

func invalidSearchData(diag string) outcomeIssue {
	return outcomeIssue{"error", "value", "INVALID_SEARCH_DATA", "Search data is invalid", "Invalid search data provided - '" + diag + "'"}
}

// SpineErrorSystem is the R4 code system of PDS's error codes.
const SpineErrorSystem = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"

type codingJSON struct {
	System  string `json:"system"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type codeableJSON struct {
	Coding []codingJSON `json:"coding"`
}

type outcomeJSON struct {
	ResourceType string      `json:"resourceType"`
	Issue        []issueJSON `json:"issue"`
}

type issueJSON struct {
	Severity    string       `json:"severity"`
	Code        string       `json:"code"`
	Details     codeableJSON `json:"details"`
	Diagnostics string       `json:"diagnostics,omitempty"`
}

func outcome(is outcomeIssue) outcomeJSON {
	return outcomeJSON{ResourceType: "OperationOutcome", Issue: []issueJSON{{
		Severity: is.severity, Code: is.code, Diagnostics: is.diagnostics,
		Details: codeableJSON{[]codingJSON{{SpineErrorSystem, "1", is.spineCode, is.display}}},
	}}}
}

func writeOutcome(w http.ResponseWriter, status int, is outcomeIssue) {
	spinecall.Code(w, is.spineCode)
	writeJSON(w, status, outcome(is))
}

// patientRecord is what an answer showed of p, for the journal: the GP
// practice only when the answer shows it (never for a sensitive patient).
func patientRecord(p Patient) spinecall.PatientRecord {
	r := spinecall.PatientRecord{NHSNumber: p.NHSNumber, Sensitive: p.Restricted, Deceased: p.DeceasedDateTime != ""}
	if !p.Restricted {
		r.GPODS = p.PracticeODS
	}
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", mimeFHIRJSON)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
