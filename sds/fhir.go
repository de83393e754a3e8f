package sds

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"sspemu/agreements"
	"sspemu/spinecall"
)

// BasePath is where the SDS FHIR API lives, as on api.service.nhs.uk.
const BasePath = "/spine-directory/FHIR/R4"

// The MIME types the API answers in.
const (
	mimeFHIRJSON = "application/fhir+json"
	mimeJSON     = "application/json"
)

// Options configure a Service.
type Options struct {
	// Registry returns the table in force; it is called per request, so a
	// reload changes the answers of the next request.
	Registry func() *agreements.Table
	// APIKey is what the apikey header must equal; empty accepts any
	// non-empty key, as the sandbox does.
	APIKey string
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Observe is told of each FHIR request and LDAP search once answered
	// (the live console); nil tells nobody.
	Observe spinecall.Observer
}

// Service is SDS: the FHIR API's handler and the LDAP directory, both over
// the registry in force.
type Service struct {
	dir    cache
	apiKey string
	log    *slog.Logger
	obs    spinecall.Observer
}

// New builds the service.
func New(opt Options) *Service {
	s := &Service{apiKey: opt.APIKey, log: opt.Logger, obs: opt.Observe}
	s.dir.registry = opt.Registry
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Directory returns the directory of the registry in force.
func (s *Service) Directory() *Directory { return s.dir.directory() }

// uuidPattern is the real service's check of X-Correlation-ID
// (request/tracking_ids_headers_reader.py).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler serves BasePath/Endpoint and BasePath/Device; anything else
// below the base is 404. The checks run in the real service's order, each
// failure an OperationOutcome with the Spine's codes:
//   - apikey missing or wrong: 401 ACCESS_DENIED (the API platform's check);
//   - an unknown path: 404 NO_RECORD_FOUND;
//   - a method other than GET: 405 NOT_IMPLEMENTED with Allow: GET;
//   - an X-Correlation-ID that is not a UUID: 400 BAD_REQUEST;
//   - an unknown parameter, a value without its system, a missing or
//     unsupported combination: 400 BAD_REQUEST naming the expected form;
//   - an Accept without application/fhir+json, application/json or */*:
//     406 MISSING_OR_INVALID_HEADER.
//
// X-Correlation-ID is echoed on every answer (a new one when the request
// had none or a bad one), and is the OperationOutcome's id; X-Request-ID is
// passed back.
func (s *Service) Handler() http.Handler {
	return spinecall.Observe(spinecall.SDS, s.obs, http.HandlerFunc(s.serveFHIR))
}

func (s *Service) serveFHIR(w http.ResponseWriter, r *http.Request) {
	if rid := r.Header.Get("X-Request-ID"); rid != "" {
		w.Header().Set("X-Request-ID", rid)
	}
	key := r.Header.Get("apikey")
	if key == "" {
		writeAccessDenied(w, "Failed to resolve API Key variable request.header.apikey")
		return
	}
	if s.apiKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) != 1 {
		writeAccessDenied(w, "Invalid ApiKey")
		return
	}
	corr := r.Header.Get("X-Correlation-ID")
	answerID := corr
	if !uuidPattern.MatchString(corr) {
		answerID = uuid.NewString()
	}
	w.Header().Set("X-Correlation-ID", answerID)
	fail := func(status int, issue issue) {
		writeOutcome(w, status, answerID, issue)
	}

	resource := strings.TrimPrefix(r.URL.Path, BasePath)
	if resource != "/Endpoint" && resource != "/Device" || !strings.HasPrefix(r.URL.Path, BasePath) {
		fail(http.StatusNotFound, issue{"error", "not-found", codeNoRecordFound, "HTTP endpoint not found"})
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		fail(http.StatusMethodNotAllowed, issue{"error", "not-supported", codeNotImplemented, "HTTP operation not supported"})
		return
	}
	if corr != "" && corr != answerID {
		fail(http.StatusBadRequest, badRequestIssue("Invalid X-Correlation-ID header. Should be an UUIDv4 matching regex '"+uuidPattern.String()+"'"))
		return
	}
	ps, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		fail(http.StatusBadRequest, badRequestIssue(err.Error()))
		return
	}
	var q Query
	var f Filter
	if resource == "/Device" {
		q, err = parseDeviceQuery(ps)
		f = q.DeviceFilter()
	} else {
		q, err = parseEndpointQuery(ps)
		f = q.EndpointFilter()
	}
	if err != nil {
		fail(http.StatusBadRequest, badRequestIssue(err.Error()))
		return
	}
	mime, ok := acceptable(r.Header.Get("Accept"))
	if !ok {
		fail(http.StatusNotAcceptable, issue{"error", "not-supported", codeMissingOrInvalidHeader, "Accept type not supported"})
		return
	}
	entries := s.dir.directory().Search(f)
	var resources []any
	for _, e := range entries {
		if resource == "/Device" {
			resources = append(resources, deviceResource(e))
		} else {
			resources = append(resources, endpointResource(e))
		}
	}
	spinecall.Results(w, len(resources))
	spinecall.Facts(w, f.String(), directoryRecords(entries), nil)
	s.log.Debug("sds fhir search", "resource", resource, "filter", f.String(), "total", len(resources))
	self := "https://" + r.Host + r.URL.Path
	if r.URL.RawQuery != "" {
		// The real service unquotes its self link (urllib unquote).
		raw, err := url.PathUnescape(r.URL.RawQuery)
		if err != nil {
			raw = r.URL.RawQuery
		}
		self += "?" + raw
	}
	w.Header().Set("Content-Type", mime)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(newBundle(resources, "https://"+r.Host+r.URL.Path+"/", self))
}

// acceptable picks the answer's type from Accept as the real service does
// (request/content_type_validator.py): the header, lower-cased, split at
// commas, each item compared whole, so a parameter (";q=0.9",
// "; charset=utf-8") makes that item unacceptable, as it does there. No
// Accept means application/fhir+json.
func acceptable(accept string) (string, bool) {
	if accept == "" {
		return mimeFHIRJSON, true
	}
	var fhirJSON, json bool
	for item := range strings.SplitSeq(strings.ToLower(accept), ",") {
		switch strings.TrimSpace(item) {
		case "*/*", mimeFHIRJSON:
			fhirJSON = true
		case mimeJSON:
			json = true
		}
	}
	switch {
	case fhirJSON:
		return mimeFHIRJSON, true
	case json:
		return mimeJSON, true
	}
	return "", false
}
