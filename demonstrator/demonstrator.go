// Package demonstrator is a built-in GP Connect 1.2.7 provider (Foundations
// and Appointment Management) held in memory, so that the SSP has a real
// provider to forward to without any network beyond the machine.
package demonstrator

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the UK surgery times need Europe/London on hosts without zoneinfo

	"sspemu/gpconnect"
)

// Config is the demonstrator section of config.yaml.
type Config struct {
	Enabled          bool   `mapstructure:"enabled"`
	Listen           string `mapstructure:"listen"`
	ASID             string `mapstructure:"asid"`
	ODS              string `mapstructure:"ods"`
	RequireSSPClient bool   `mapstructure:"require_ssp_client"`
	// Cert and Key are its server certificate; empty: the dev PKI's
	// provider.pem / provider-key.pem (SANs localhost, 127.0.0.1, ::1).
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Options are the runtime settings of one Demonstrator.
type Options struct {
	ASID, ODS string
	// BaseURL is the service root as consumers address it, e.g.
	// https://localhost:9443/A20047/STU3/1/gpconnect; it is written into
	// fullUrl, Location and the capability statement.
	BaseURL string
	// Now is the clock; nil means time.Now. Tests pin it so that the seed
	// data and the JWT checks are reproducible.
	Now func() time.Time
	// JWTSkew is the clock tolerance handed to gpconnect.JWTPolicy.
	JWTSkew time.Duration
	// Audit is the provider's own audit; nil means none. With one, every
	// request gets exactly one record before it is answered, and a request
	// whose record cannot be written is answered 500 and not acted on.
	Audit Auditor
}

// Demonstrator is an in-memory GP Connect provider. It is safe for
// concurrent use; a booking is atomic with respect to every other request.
type Demonstrator struct {
	asid, ods string
	baseURL   string
	rootPath  string
	now       func() time.Time
	loc       *time.Location
	policy    gpconnect.JWTPolicy
	auditor   Auditor

	mu sync.RWMutex
	st *state
}

var (
	asidPattern = regexp.MustCompile(`^[0-9]{12}$`)
	odsPattern  = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
)

// New builds a Demonstrator with its seed data computed from Options.Now.
func New(opt Options) (*Demonstrator, error) {
	var errs []error
	if !asidPattern.MatchString(opt.ASID) {
		errs = append(errs, fmt.Errorf("demonstrator asid %q: want 12 digits", opt.ASID))
	}
	if !odsPattern.MatchString(opt.ODS) {
		errs = append(errs, fmt.Errorf("demonstrator ods %q: want 3 to 10 capital letters or digits", opt.ODS))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, fmt.Errorf("load time zone Europe/London: %w", err)
	}
	d := &Demonstrator{
		asid:     opt.ASID,
		ods:      opt.ODS,
		baseURL:  strings.TrimSuffix(opt.BaseURL, "/"),
		rootPath: "/" + opt.ODS + "/STU3/1/gpconnect",
		now:      opt.Now,
		loc:      loc,
		policy:   gpconnect.JWTPolicy{Skew: opt.JWTSkew},
		auditor:  opt.Audit,
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.baseURL == "" {
		d.baseURL = "https://localhost:9443" + d.rootPath
	}
	d.st = seed(d.now(), loc)
	return d, nil
}

// Reset restores the seed data, recomputed from the current time, so that a
// test run can start from a known appointment book.
func (d *Demonstrator) Reset() {
	st := seed(d.now(), d.loc)
	d.mu.Lock()
	d.st = st
	d.mu.Unlock()
}

// Handler serves the service root /<ODS>/STU3/1/gpconnect. Every refusal is
// a GP Connect OperationOutcome (JSON, Cache-Control: no-store), so a
// consumer behind the SSP never sees a bare error page. The checks run in
// this order, and the first failure answers:
//   - _format, Accept, Content-Type: an unsupported type, or XML (the
//     demonstrator speaks JSON only), is 415 UNSUPPORTED_MEDIA_TYPE;
//   - a method other than GET, POST, PUT (OPTIONS included) is 405
//     BAD_REQUEST with an Allow header;
//   - a path outside the service root, or one that fits no interaction
//     (paths are case-sensitive: /Metadata is not /metadata), is 404
//     NO_RECORD_FOUND;
//   - Ssp-* headers missing or malformed, Ssp-To not this ASID, an unknown
//     interaction, or one whose verb and path differ from the request's, is
//     400 BAD_REQUEST (the structured record is 501 NOT_IMPLEMENTED);
//   - the JWT, through gpconnect.JWTPolicy: 400 BAD_REQUEST or 422
//     INVALID_RESOURCE as the policy says;
//   - then the interaction's own parameter and body rules.
//
// If-Match is optional on amend and cancel; when sent it must equal the
// current W/"<version>" (else 409 DUPLICATE_REJECTED).
//
// With Options.Audit, every request that reaches the handler, answered or
// refused (404, 405, 415 and panics included), gets exactly one audit
// record, written after its outcome is known and before the response. If
// the write fails the answer is 500 INTERNAL_SERVER_ERROR instead. A change
// (book, amend, cancel, register) is recorded while the demonstrator's
// write lock is held, after the change is decided and before it is applied,
// so a failed write leaves the appointment book untouched; the price is that
// every other request waits for that write.
func (d *Demonstrator) Handler() http.Handler {
	return recoverOutcome(http.HandlerFunc(d.serve))
}

// outcome is a refusal on its way to the client as an OperationOutcome.
type outcome struct {
	status      int
	code        string
	diagnostics string
	allow       string // Allow header for 405
}

func (o *outcome) Error() string { return fmt.Sprintf("%d %s: %s", o.status, o.code, o.diagnostics) }

func refuse(status int, code, format string, args ...any) *outcome {
	return &outcome{status: status, code: code, diagnostics: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *outcome {
	return refuse(http.StatusBadRequest, gpconnect.CodeBadRequest, format, args...)
}

func invalidParameter(format string, args ...any) *outcome {
	return refuse(http.StatusUnprocessableEntity, gpconnect.CodeInvalidParameter, format, args...)
}

func invalidResource(format string, args ...any) *outcome {
	return refuse(http.StatusUnprocessableEntity, gpconnect.CodeInvalidResource, format, args...)
}

// reply is a successful answer.
type reply struct {
	status   int
	etag     string // version, written as W/"<version>"
	location string
	body     any    // nil: empty body
	raw      []byte // body encoded by encodeReply
}

// request is what the checks learned about one call, handed to the
// interaction's handler.
type request struct {
	r      *http.Request
	in     gpconnect.Interaction
	rel    string // path relative to the service root
	params []queryParam
	now    time.Time
	format gpconnect.Format
	sc     *scope
}

const maxBody = 1 << 20

func (d *Demonstrator) serve(w http.ResponseWriter, r *http.Request) {
	sc := &scope{start: d.now()}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			d.finish(w, r, sc, nil, refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
				"the demonstrator failed while answering: %v", v))
		}
	}()
	w.Header().Set("Cache-Control", "no-store")
	rep, o := d.answer(r, sc)
	d.finish(w, r, sc, rep, o)
}

// answer decides the outcome of a request: a reply or a refusal.
func (d *Demonstrator) answer(r *http.Request, sc *scope) (*reply, *outcome) {
	f, ok := gpconnect.NegotiateResponse(r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Content-Type"))
	if !ok {
		return nil, refuse(http.StatusUnsupportedMediaType, gpconnect.CodeUnsupportedMediaType,
			"unsupported media type in _format, Accept or Content-Type: use application/fhir+json")
	}
	if f != gpconnect.FormatJSON {
		return nil, refuse(http.StatusUnsupportedMediaType, gpconnect.CodeUnsupportedMediaType,
			"the demonstrator answers in JSON only: use application/fhir+json")
	}
	rq, o := d.check(r, f, sc)
	if o != nil {
		return nil, o
	}
	return d.dispatch(rq)
}

// finish writes the audit record of the outcome, unless a change already
// did (commit), then the response. The demonstrator answers in JSON only,
// so every response is written as JSON.
func (d *Demonstrator) finish(w http.ResponseWriter, r *http.Request, sc *scope, rep *reply, o *outcome) {
	if o == nil {
		o = encodeReply(rep)
	}
	if !sc.audited {
		if err := d.record(r, sc, rep, o); err != nil {
			o = auditFailed(err)
		}
	}
	if o != nil {
		writeOutcome(w, gpconnect.FormatJSON, o)
		return
	}
	writeReply(w, gpconnect.FormatJSON, rep)
}

// check applies the provider's request rules in order: method, path, Ssp
// headers, interaction against verb and path, JWT, body media type, query.
func (d *Demonstrator) check(r *http.Request, f gpconnect.Format, sc *scope) (*request, *outcome) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		o := refuse(http.StatusMethodNotAllowed, gpconnect.CodeBadRequest,
			"method %s is not allowed: GP Connect providers accept GET, POST and PUT (a CORS preflight is answered by the SSP)", r.Method)
		o.allow = "GET, POST, PUT"
		return nil, o
	}
	path := r.URL.Path
	if !strings.HasPrefix(path, d.rootPath+"/") {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound,
			"no GP Connect service at %q: the service root is %s", path, d.rootPath)
	}
	rel := path[len(d.rootPath):]
	if len(gpconnect.RoutesOfPath(rel)) == 0 {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound,
			"no GP Connect interaction has the path %q (paths are case-sensitive, e.g. /metadata, /Patient/{id})", rel)
	}
	h, he := gpconnect.ParseSspHeaders(r.Header)
	if he != nil {
		return nil, badRequest("header %s: %s", he.Header, he.Reason)
	}
	sc.hdr = h
	if h.To != d.asid {
		return nil, badRequest("header Ssp-To %q is not this provider's ASID %s", h.To, d.asid)
	}
	in, ok := gpconnect.Lookup(h.InteractionID)
	if !ok {
		return nil, badRequest("header Ssp-InteractionID %q is not a GP Connect interaction", h.InteractionID)
	}
	if !in.MatchesRoute(r.Method, rel) {
		return nil, badRequest("interaction %s (%s) is %s %s, not %s %s", in.ID, in.Name, in.Method, in.Path, r.Method, rel)
	}
	if in.Group == gpconnect.GroupStructured {
		return nil, refuse(http.StatusNotImplemented, gpconnect.CodeNotImplemented,
			"the demonstrator does not offer %s (%s)", in.Name, in.ID)
	}
	now := d.now()
	tok, ce := d.policy.CheckAuthorization(r.Header.Get("Authorization"), in, now)
	sc.token = tok
	if ce == nil {
		ce = gpconnect.CheckAudience(tok, d.baseURL)
	}
	if ce != nil {
		status := ce.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return nil, refuse(status, ce.Code(), "JWT %s: %s", ce.Claim, ce.Reason)
	}
	if r.Method != http.MethodGet {
		bf, ok := gpconnect.AcceptableBody(r.Header.Get("Content-Type"))
		if !ok || bf != gpconnect.FormatJSON {
			return nil, refuse(http.StatusUnsupportedMediaType, gpconnect.CodeUnsupportedMediaType,
				"Content-Type %q is not supported: send application/fhir+json", r.Header.Get("Content-Type"))
		}
	}
	params, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query string: %v", err)
	}
	return &request{r: r, in: in, rel: rel, params: params, now: now, format: f, sc: sc}, nil
}

func (d *Demonstrator) dispatch(rq *request) (*reply, *outcome) {
	switch rq.in.ID {
	case gpconnect.ReadMetadata:
		return d.capabilityStatement(rq), nil
	case gpconnect.ReadPatient:
		return d.readPatient(rq)
	case gpconnect.SearchPatient:
		return d.findPatient(rq)
	case gpconnect.RegisterPatient:
		return d.registerPatient(rq)
	case gpconnect.ReadPractitioner:
		return d.readPractitioner(rq)
	case gpconnect.SearchPractitioner:
		return d.findPractitioner(rq)
	case gpconnect.ReadOrganization:
		return d.readOrganization(rq)
	case gpconnect.SearchOrganization:
		return d.findOrganization(rq)
	case gpconnect.ReadLocation:
		return d.readLocation(rq)
	case gpconnect.SearchSlot:
		return d.searchSlots(rq)
	case gpconnect.ReadAppointment:
		return d.readAppointment(rq)
	case gpconnect.CreateAppointment:
		return d.bookAppointment(rq)
	case gpconnect.UpdateAppointment:
		return d.amendAppointment(rq)
	case gpconnect.CancelAppointment:
		return d.cancelAppointment(rq)
	case gpconnect.SearchPatientAppts:
		return d.patientAppointments(rq)
	}
	return nil, refuse(http.StatusNotImplemented, gpconnect.CodeNotImplemented, "the demonstrator does not offer %s", rq.in.ID)
}

// readBody reads a request body up to maxBody bytes.
func readBody(rq *request) ([]byte, *outcome) {
	b, err := io.ReadAll(io.LimitReader(rq.r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if len(b) > maxBody {
		return nil, badRequest("body larger than %d bytes", maxBody)
	}
	return b, nil
}

func writeOutcome(w http.ResponseWriter, f gpconnect.Format, o *outcome) {
	if o.allow != "" {
		w.Header().Set("Allow", o.allow)
	}
	gpconnect.WriteOutcome(w, f, o.status, gpconnect.ProviderOutcome(o.status, o.code, o.diagnostics))
}

func writeReply(w http.ResponseWriter, f gpconnect.Format, rep *reply) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rep.etag != "" {
		h.Set("ETag", `W/"`+rep.etag+`"`)
	}
	if rep.location != "" {
		h.Set("Location", rep.location)
	}
	if o := encodeReply(rep); o != nil {
		writeOutcome(w, f, o)
		return
	}
	if rep.raw == nil {
		w.WriteHeader(rep.status)
		return
	}
	h.Set("Content-Type", f.ContentType())
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.raw)
}

// recoverOutcome turns a panic in a handler into a 500 OperationOutcome, so
// that a bug never shows the consumer a bare error page or a dropped
// connection.
func recoverOutcome(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeOutcome(w, gpconnect.FormatJSON, refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
					"the demonstrator failed while answering: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
