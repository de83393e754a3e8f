// Package spinecall describes one call a consumer made to a Spine service
// (SDS over FHIR or LDAP, PDS), so the services can report their calls to
// the live console without importing it: each service takes an Observer,
// and the console is one.
package spinecall

import (
	"net/http"
	"time"
)

// The services a Call names.
const (
	SDS  = "sds"  // the SDS FHIR API
	LDAP = "ldap" // SDS over LDAP or LDAPS
	PDS  = "pds"  // the PDS FHIR API
)

// Call is one finished request to a Spine service.
type Call struct {
	Service string    `json:"service"` // SDS, LDAP or PDS
	Time    time.Time `json:"time"`    // when the request arrived
	Client  string    `json:"client"`  // the caller's address (an LDAP call names its connection)
	Method  string    `json:"method"`  // the HTTP method, or "search"
	// Request is the path and query, or the LDAP base and filter.
	Request string `json:"request"`
	// Status is the HTTP status, or the LDAP result code.
	Status int `json:"status"`
	// Result names an LDAP result code ("Success", "No Such Object").
	Result string `json:"result,omitempty"`
	// Results is how many records the answer held: Bundle entries, 1 for
	// a read, LDAP entries sent; 0 for an error.
	Results       int     `json:"results"`
	CorrelationID string  `json:"correlation_id,omitempty"`
	RequestID     string  `json:"request_id,omitempty"`
	Seconds       float64 `json:"seconds"`

	// The members below are the key facts of the call, for the journal
	// (audit.Journal) that `sspemu report` reads for GPC-SPN-TST-01/02.

	// Listener is where the call came in: "https" (the SDS and PDS FHIR
	// APIs), "ldap" or "ldaps".
	Listener string `json:"listener,omitempty"`
	// Base and Filter are an LDAP search's base DN and filter; for the SDS
	// FHIR API, Filter is the directory filter its query maps to.
	Base   string `json:"base,omitempty"`
	Filter string `json:"filter,omitempty"`
	// Code is the Spine error code of an OperationOutcome answer.
	Code string `json:"code,omitempty"`
	// ClientSubject, ClientIssuer and ClientFingerprint (SHA-256 of the
	// DER, hex) name the client certificate of an LDAPS connection
	// (Method Connect): gldap does not tell a search which connection's
	// certificate it came with, so the handshake is its own entry.
	ClientSubject     string `json:"client_subject,omitempty"`
	ClientIssuer      string `json:"client_issuer,omitempty"`
	ClientFingerprint string `json:"client_fingerprint,omitempty"`
	// Directory is the SDS records the answer held, Patients the PDS
	// patients; at most MaxFacts each (Results has the full count).
	Directory []DirectoryRecord `json:"directory,omitempty"`
	Patients  []PatientRecord   `json:"patients,omitempty"`
}

// Connect is the Method of an LDAPS handshake's entry.
const Connect = "connect"

// MaxFacts bounds the records a Call lists, so one broad search cannot make
// a journal line of the whole directory.
const MaxFacts = 20

// DirectoryRecord is what an SDS answer said of one record: an accredited
// system (nhsAs: ID is its ASID) or a message handling system (nhsMhs: ID
// is the MHS uniqueIdentifier, with the endpoint and the one interaction
// it serves).
type DirectoryRecord struct {
	Class       string `json:"class"` // nhsAs or nhsMhs
	ID          string `json:"id"`
	ODS         string `json:"ods,omitempty"`
	PartyKey    string `json:"party_key,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	Interaction string `json:"interaction,omitempty"`
}

// PatientRecord is what a PDS answer said of one patient: the NHS number
// answered (a superseded number answers its replacement: Requested then
// differs), the GP practice's ODS code as shown (none for a sensitive
// patient), and its state.
type PatientRecord struct {
	NHSNumber string `json:"nhs_number"`
	Requested string `json:"requested,omitempty"`
	GPODS     string `json:"gp_ods,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Deceased  bool   `json:"deceased,omitempty"`
}

// Observer receives each finished call. It is called on the request's
// goroutine after the answer is written, so it must not wait; nil means
// nobody is told.
type Observer func(Call)

// Tee tells every non-nil observer in turn; nil when there is none.
func Tee(obs ...Observer) Observer {
	var live []Observer
	for _, o := range obs {
		if o != nil {
			live = append(live, o)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return func(c Call) {
		for _, o := range live {
			o(c)
		}
	}
}

// Requests passes on calls that are requests, leaving out the LDAPS
// handshakes (Method Connect): the live console lists requests.
func Requests(obs Observer) Observer {
	if obs == nil {
		return nil
	}
	return func(c Call) {
		if c.Method != Connect {
			obs(c)
		}
	}
}

// recorder remembers what a handler answered.
type recorder struct {
	http.ResponseWriter
	status  int
	results int
	facts   Call // Filter, Code, Directory and Patients, set by the handler
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Results tells the observer how many records an answer holds; outside
// Observe it does nothing.
func Results(w http.ResponseWriter, n int) {
	if r, ok := w.(*recorder); ok {
		r.results = n
	}
}

// Facts tells the observer the filter and the records an answer held
// (bounded to MaxFacts each); outside Observe it does nothing.
func Facts(w http.ResponseWriter, filter string, dir []DirectoryRecord, patients []PatientRecord) {
	if r, ok := w.(*recorder); ok {
		r.facts.Filter = filter
		r.facts.Directory = dir[:min(len(dir), MaxFacts)]
		r.facts.Patients = patients[:min(len(patients), MaxFacts)]
	}
}

// Code tells the observer the Spine error code of an OperationOutcome
// answer; outside Observe it does nothing.
func Code(w http.ResponseWriter, code string) {
	if r, ok := w.(*recorder); ok {
		r.facts.Code = code
	}
}

// Observe wraps a service's handler so each request is reported to obs
// once answered; with a nil obs it returns h itself.
func Observe(service string, obs Observer, h http.Handler) http.Handler {
	if obs == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		obs(Call{
			Service:       service,
			Time:          start,
			Client:        r.RemoteAddr,
			Method:        r.Method,
			Request:       r.URL.RequestURI(),
			Status:        rec.status,
			Results:       rec.results,
			CorrelationID: w.Header().Get("X-Correlation-ID"),
			RequestID:     w.Header().Get("X-Request-ID"),
			Seconds:       time.Since(start).Seconds(),
			Listener:      "https",
			Filter:        rec.facts.Filter,
			Code:          rec.facts.Code,
			Directory:     rec.facts.Directory,
			Patients:      rec.facts.Patients,
		})
	})
}
