package demonstrator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

// Handler serves every practice under its service root
// /<ODS>/STU3/1/gpconnect. Every refusal is a GP Connect OperationOutcome in
// the negotiated format with Cache-Control: no-store, so a consumer behind
// the SSP never sees a bare error page. The checks run in this order, and
// the first failure answers:
//   - _format, then Accept, then Content-Type pick JSON or XML (the legacy
//     application/json+fhir and application/xml+fhir count as the STU3
//     types); a source naming only other types is 415 with the code
//     BAD_REQUEST (Spine-ErrorOrWarningCode-1 has no code of its own for
//     it), answered in the best format the rest allow;
//   - a method other than GET, POST, PUT (OPTIONS included) is 405
//     BAD_REQUEST with an Allow header;
//   - a path under no practice's service root, or one that fits no
//     interaction (paths are case-sensitive: /Metadata is not /metadata),
//     is 404 NO_RECORD_FOUND;
//   - Ssp-* headers missing or malformed, Ssp-To not the practice's ASID,
//     an unknown interaction, or one whose verb and path differ from the
//     request's, is 400 BAD_REQUEST (the structured record is 501
//     NOT_IMPLEMENTED);
//   - the JWT, through gpconnect.JWTPolicy against the real clock, with aud
//     the practice's service root: 400 BAD_REQUEST or 422 INVALID_RESOURCE
//     as the policy says;
//   - a POST or PUT body whose Content-Type is not a FHIR type is 415; a
//     malformed query string 400;
//   - an XML body that is not well-formed is 400 BAD_REQUEST, one with an
//     element STU3 does not define 422 INVALID_RESOURCE; it then goes on as
//     the JSON it converts to, under the same rules;
//   - the Hook, when there is one;
//   - a designated patient's error (SeedError), when the request names one;
//   - then the interaction's own parameter and body rules.
//
// If-Match is optional on amend and cancel; when sent it must name the
// current version (else 409 FHIR_CONSTRAINT_VIOLATION). Prefer: return=minimal
// leaves the body out of a booking's or an update's answer. An answer
// with a body is gzip-compressed when Accept-Encoding asks for it.
//
// With Options.Audit, every request that reaches the handler, answered or
// refused (404, 405, 415 and panics included), gets exactly one audit
// record, written after its outcome is known and before the response; if
// the write fails the answer is 500 INTERNAL_SERVER_ERROR instead. A change
// (book, amend, cancel, register) is recorded inside the store's Update
// that makes it, after the change is decided and the answer encoded, and
// the change lands only when the record is durable; the price is that the
// practice's other requests wait for that write.
func (d *Demonstrator) Handler() http.Handler {
	return gzipped(recoverOutcome(http.HandlerFunc(d.serve)))
}

// Inbound is a request as the edge has identified it, handed to a Hook.
type Inbound struct {
	ODS, ASID   string // the practice addressed
	TraceID     string
	From        string // Ssp-From
	Interaction string // Ssp-InteractionID
	Method      string
	Path        string // below the service root
	To          string // Ssp-To
	Query       string // the raw query string, without "?"
	// Body is the request body as JSON (an XML body already converted);
	// nil for a GET.
	Body []byte
	// Header is the request's headers, read only.
	Header http.Header
	// Patients returns the NHS numbers of the patients the path names
	// (/Patient/{id}, /Patient/{id}/Appointment, /Appointment/{id}),
	// looked up in the practice's store when called.
	Patients func() []string
	// Answer holds headers the Hook adds to the response, whatever it is;
	// an Sspemu-Fault there is also written into the audit record.
	Answer http.Header
}

// Hook runs at a practice's edge after the request's checks and before its
// handler, so a fault can act where a real practice would fail: it may
// wait (ctx ends with the request), return a refusal to answer instead
// (shaped, negotiated and audited like every other refusal), or return one
// with Drop set to close the connection unanswered once the practice's
// audit has recorded why, with its Reason.
type Hook func(ctx context.Context, in Inbound) *gpconnect.Refusal

// exchange is one request at the edge: what the checks have learnt so far,
// the answer once encoded, and whether its audit record is written.
type exchange struct {
	r       *http.Request
	start   time.Time
	format  gpconnect.Format
	p       *practice            // nil until the path names a practice
	hdr     gpconnect.SspHeaders // as validated; zero until the header check passes
	token   *gpconnect.Token     // as decoded, possibly refused
	minimal bool                 // Prefer: return=minimal
	note    string               // what a change did, for the record's reason
	audited bool                 // the record was appended, or its append failed

	prepared bool
	encoded  []byte // the answer's body; nil: none

	answer http.Header // headers a Hook added, for the response
}

const maxBody = 1 << 20

func (d *Demonstrator) serve(w http.ResponseWriter, r *http.Request) {
	x := &exchange{r: r, start: d.now()}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			d.finish(w, x, nil, refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
				"the demonstrator failed while answering: %v", v))
		}
	}()
	w.Header().Set("Cache-Control", "no-store")
	rep, o := d.answer(x)
	d.finish(w, x, rep, o)
}

// answer checks a request and hands it to its practice's handler.
func (d *Demonstrator) answer(x *exchange) (*reply, *gpconnect.Refusal) {
	r := x.r
	f, ok := negotiate(r)
	x.format = f
	if !ok {
		return nil, refuse(http.StatusUnsupportedMediaType, gpconnect.CodeBadRequest,
			"unsupported media type in _format, Accept or Content-Type: use application/fhir+json or application/fhir+xml")
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		o := refuse(http.StatusMethodNotAllowed, gpconnect.CodeBadRequest,
			"method %s is not allowed: GP Connect providers accept GET, POST and PUT (a CORS preflight is answered by the SSP)", r.Method)
		o.Allow = "GET, POST, PUT"
		return nil, o
	}
	p, rel, ok := d.practiceOf(r.URL.Path)
	if !ok {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound,
			"no GP Connect service at %q: the service roots are %s", r.URL.Path, d.roots())
	}
	x.p = p
	if len(gpconnect.RoutesOfPath(rel)) == 0 {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound,
			"no GP Connect interaction has the path %q (paths are case-sensitive, e.g. /metadata, /Patient/{id})", rel)
	}
	h, he := gpconnect.ParseSspHeaders(r.Header)
	if he != nil {
		return nil, badRequest("header %s: %s", he.Header, he.Reason)
	}
	x.hdr = h
	if h.To != p.asid {
		return nil, badRequest("header Ssp-To %q is not the ASID of practice %s (%s)", h.To, p.ods, p.asid)
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
	tok, ce := p.policy.CheckAuthorization(r.Header.Get("Authorization"), in, d.now())
	x.token = tok
	if ce == nil {
		ce = gpconnect.CheckAudience(tok, p.baseURL)
	}
	if ce != nil {
		status := ce.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return nil, refuse(status, ce.Code(), "JWT %s: %s", ce.Claim, ce.Reason)
	}
	bodyFormat := gpconnect.FormatJSON
	if r.Method != http.MethodGet {
		ct := r.Header.Get("Content-Type")
		if bodyFormat, ok = gpconnect.AcceptableBody(legacyMIME(ct)); !ok {
			return nil, refuse(http.StatusUnsupportedMediaType, gpconnect.CodeBadRequest,
				"Content-Type %q is not supported: send application/fhir+json or application/fhir+xml", ct)
		}
	}
	params, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query string: %v", err)
	}
	rq := &request{in: in, rel: rel, params: params, now: p.clock()}
	if r.Method != http.MethodGet {
		b, o := readBody(r)
		if o != nil {
			return nil, o
		}
		if bodyFormat == gpconnect.FormatXML {
			if b, o = xmlToJSON(b); o != nil {
				return nil, o
			}
		}
		rq.body = b
	}
	if im := r.Header.Get("If-Match"); im != "" {
		rq.ifMatch, rq.ifMatchRaw = ifMatchVersion(im), im
	}
	x.minimal = preferMinimal(r)
	rq.commit = func(rep *reply, note string) error { return d.commit(x, rep, note) }
	if d.hook != nil {
		x.answer = http.Header{}
		if ref := d.hook(r.Context(), Inbound{
			ODS: p.ods, ASID: p.asid, TraceID: h.TraceID, From: h.From, Interaction: in.ID, Method: r.Method, Path: rel,
			To: h.To, Query: r.URL.RawQuery, Body: rq.body, Header: r.Header,
			Patients: func() []string { return p.patientsOf(rel) }, Answer: x.answer,
		}); ref != nil {
			if ref.Drop {
				// Nothing is answered, as when a practice's system fails
				// mid-call; its audit still says what happened (decision
				// error, rule fault), then net/http closes the connection.
				_ = d.record(x, nil, ref)
				panic(http.ErrAbortHandler)
			}
			return nil, ref
		}
	}
	if x.answer == nil {
		x.answer = http.Header{}
	}
	if o := p.designatedRefusal(rq, x.answer); o != nil {
		return nil, o
	}
	return p.dispatch(rq)
}

// finish writes the audit record of the outcome, unless a change already
// did (commit), then the response.
func (d *Demonstrator) finish(w http.ResponseWriter, x *exchange, rep *reply, o *gpconnect.Refusal) {
	if o == nil {
		o = x.prepare(rep)
	}
	if !x.audited {
		if err := d.record(x, rep, o); err != nil {
			o = auditFailed(err)
		}
	}
	for k, v := range x.answer {
		w.Header()[k] = v
	}
	if o != nil {
		o.Write(w, x.format)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rep.version != "" {
		h.Set("ETag", `W/"`+rep.version+`"`)
	}
	if rep.created != "" {
		h.Set("Location", x.p.baseURL+"/"+rep.created+"/_history/"+rep.version)
	}
	if x.encoded == nil {
		w.WriteHeader(rep.status)
		return
	}
	h.Set("Content-Type", x.format.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(x.encoded)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(x.encoded) // the client going away is not ours to report
}

// prepare encodes rep's body once, in the negotiated format, so that an
// encoding failure is known before the audit records the answer. Prefer:
// return=minimal leaves the body of a create or update out.
func (x *exchange) prepare(rep *reply) *gpconnect.Refusal {
	if x.prepared {
		return nil
	}
	x.prepared = true
	if rep.body == nil || (rep.minimal && x.minimal) {
		return nil
	}
	b, err := json.Marshal(rep.body)
	if err != nil {
		return refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError, "encoding the response: %v", err)
	}
	if x.format == gpconnect.FormatXML {
		if b, err = fhir.JSONToXML(b); err != nil {
			return refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError, "encoding the response as XML: %v", err)
		}
	}
	x.encoded = b
	return nil
}

// commit is the last step of a change, inside the Update that makes it:
// it encodes the answer and makes the change's audit record durable. An
// error leaves the change out.
func (d *Demonstrator) commit(x *exchange, rep *reply, note string) error {
	if o := x.prepare(rep); o != nil {
		return o // finish audits the 500
	}
	x.note = note
	if err := d.record(x, rep, nil); err != nil {
		return auditFailed(err)
	}
	return nil
}

// asOutcome is the answer to an error out of a store transaction: a
// handler's refusal as it is, anything else (the store failing) a 500.
func asOutcome(err error) *gpconnect.Refusal {
	var o *gpconnect.Refusal
	if errors.As(err, &o) {
		return o
	}
	return refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError, "the practice's store failed: %v", err)
}

// negotiate picks the answer's format with gpconnect.NegotiateResponse,
// after turning the legacy DSTU2 MIME types into the STU3 ones. Several
// Accept lines count as one list (RFC 9110, 5.3).
func negotiate(r *http.Request) (gpconnect.Format, bool) {
	accept := r.Header.Values("Accept")
	a := ""
	switch len(accept) {
	case 0:
	case 1:
		a = accept[0]
	default:
		a = strings.Join(accept, ",")
	}
	return gpconnect.NegotiateResponse(formatQuery(r.URL.RawQuery), legacyMIME(a), legacyMIME(r.Header.Get("Content-Type")))
}

// legacyMIME rewrites application/json+fhir and application/xml+fhir (the
// DSTU2 types that older clients still send) as the STU3 types; anything
// else is returned as it is.
func legacyMIME(s string) string {
	if !strings.Contains(strings.ToLower(s), "+fhir") {
		return s
	}
	var b strings.Builder
	for i, part := range strings.Split(s, ",") {
		if i > 0 {
			b.WriteByte(',')
		}
		mt, params, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/json+fhir":
			mt = gpconnect.MIMEJSON
		case "application/xml+fhir":
			mt = gpconnect.MIMEXML
		}
		b.WriteString(mt)
		if params != "" {
			b.WriteByte(';')
			b.WriteString(params)
		}
	}
	return b.String()
}

// formatQuery returns the query NegotiateResponse reads: raw itself, or,
// when its first _format names a legacy type, that _format rewritten.
func formatQuery(raw string) string {
	if !strings.Contains(raw, "_format") {
		return raw
	}
	for _, pair := range strings.Split(raw, "&") {
		key, value, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err != nil || k != "_format" {
			continue
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return raw
		}
		if n := legacyMIME(v); n != v {
			return "_format=" + url.QueryEscape(n)
		}
		return raw
	}
	return raw
}

// ifMatchVersion reads the version out of an If-Match ETag (W/"3" or "3");
// anything else is kept whole, and so matches no version.
func ifMatchVersion(h string) string {
	v := strings.TrimSpace(h)
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return h
}

func preferMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		if strings.Contains(strings.ReplaceAll(v, " ", ""), "return=minimal") {
			return true
		}
	}
	return false
}

// readBody reads a request body up to maxBody bytes.
func readBody(r *http.Request) ([]byte, *gpconnect.Refusal) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if len(b) > maxBody {
		return nil, badRequest("body larger than %d bytes", maxBody)
	}
	return b, nil
}

// xmlToJSON turns an XML request body into the JSON the handlers read:
// XML that is not well-formed (or holds a DOCTYPE, another encoding, too
// deep a nesting) is 400 BAD_REQUEST, like JSON that does not parse; XML
// that is not an STU3 resource (an element STU3 does not define, a value of
// the wrong type) is 422 INVALID_RESOURCE, like an unknown JSON member.
func xmlToJSON(b []byte) ([]byte, *gpconnect.Refusal) {
	j, err := fhir.XMLToJSON(b)
	switch {
	case err == nil:
		return j, nil
	case errors.Is(err, fhir.ErrSyntax):
		return nil, badRequest("the body is not well-formed FHIR XML: %v", err)
	}
	return nil, invalidResource("the XML body is not a FHIR STU3 resource: %v", err)
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
				refuse(http.StatusInternalServerError, gpconnect.CodeInternalServerError,
					"the demonstrator failed while answering: %v", v).Write(w, gpconnect.FormatJSON)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
