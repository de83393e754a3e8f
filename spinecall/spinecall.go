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
}

// Observer receives each finished call. It is called on the request's
// goroutine after the answer is written, so it must not wait; nil means
// nobody is told.
type Observer func(Call)

// recorder remembers what a handler answered.
type recorder struct {
	http.ResponseWriter
	status  int
	results int
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
		})
	})
}
