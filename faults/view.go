package faults

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The identifier systems of an NHS number: the one GP Connect 1.2.7 uses and
// the DSTU2-era one an older requested_record claim carries.
const (
	SystemNHSNumber       = "https://fhir.nhs.uk/Id/nhs-number"
	SystemNHSNumberLegacy = "http://fhir.nhs.net/Id/nhs-number"
)

// View is what a rule is matched against: one request as the caller (the SSP
// or a practice) has already read it. Fields left empty match only rules that
// do not ask for them.
type View struct {
	Interaction string // the Ssp-InteractionID header
	From, To    string // the Ssp-From and Ssp-To headers
	Method      string
	// Path is below the service root, without the query: "/Patient/2".
	Path string
	// Query is the raw query string, without "?".
	Query string
	// Body is the request body (or its first part, see PeekBody); it is
	// read only when a rule asks for an NHS number.
	Body []byte
	// RequestedRecord is the JWT's requested_record claim as sent, when the
	// token carries one (DSTU2-era tokens; a 1.2.x token has none).
	RequestedRecord []byte
	// Patients are NHS numbers the caller knows the request is about
	// without reading it: GP Connect names a patient in the path by logical
	// ID (/Patient/2, /Patient/2/Appointment) and an appointment by its own
	// ID, which only the practice can turn into an NHS number.
	Patients []string
}

// NHSNumbers returns every NHS number the request is about, each once: the
// caller's Patients, the identifier search parameter
// (identifier=https://fhir.nhs.uk/Id/nhs-number|NNN, find a patient), any
// Identifier with an NHS number system in the body, in JSON or XML (the
// Patient in $gpc.registerpatient's Parameters, patientNHSNumber in
// $gpc.getstructuredrecord's, an Appointment participant referring to its
// patient by identifier) and in the JWT's requested_record.
func (v View) NHSNumbers() []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, n := range v.Patients {
		add(n)
	}
	for _, n := range queryNHSNumbers(v.Query) {
		add(n)
	}
	for _, n := range bodyNHSNumbers(v.Body) {
		add(n)
	}
	for _, n := range bodyNHSNumbers(v.RequestedRecord) {
		add(n)
	}
	return out
}

func isNHSSystem(s string) bool { return s == SystemNHSNumber || s == SystemNHSNumberLegacy }

// queryNHSNumbers reads identifier=<system>|<value> parameters. A query
// with a bad escape still yields its good pairs.
func queryNHSNumbers(raw string) []string {
	if raw == "" {
		return nil
	}
	q, _ := url.ParseQuery(raw)
	var out []string
	for _, id := range q["identifier"] {
		if sys, val, ok := strings.Cut(id, "|"); ok && isNHSSystem(sys) {
			out = append(out, val)
		}
	}
	return out
}

// bodyNHSNumbers finds NHS number Identifiers in a FHIR body, JSON or XML by
// its first byte. A body that does not parse gives what was read before the
// fault: a fault rule only chooses requests, it does not validate them.
func bodyNHSNumbers(b []byte) []string {
	b = bytes.TrimLeft(b, " \t\r\n\ufeff")
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{', '[':
		return jsonNHSNumbers(b)
	case '<':
		return xmlNHSNumbers(b)
	}
	return nil
}

// maxDepth stops a hostile body from driving the walk deeper than any FHIR
// resource goes.
const maxDepth = 64

// jsonNHSNumbers walks the JSON tokens: an object holding "system" set to an
// NHS number system and a string "value" is an NHS number Identifier.
func jsonNHSNumbers(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		object      bool
		key         string // the member name awaiting its value
		expectKey   bool
		system, val string
	}
	var stack []frame
	var out []string
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		// The value just read belongs to the member named in the top frame.
		var top *frame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxDepth {
					return out
				}
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, frame{object: t == '{', expectKey: t == '{'})
			case '}', ']':
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if f.object && isNHSSystem(f.system) && f.val != "" {
					out = append(out, f.val)
				}
			}
		case string:
			if top != nil && top.object && top.expectKey {
				top.key, top.expectKey = t, false
				continue
			}
			if top != nil && top.object {
				switch top.key {
				case "system":
					top.system = t
				case "value":
					top.val = t
				}
				top.expectKey = true
			}
		default:
			if top != nil && top.object {
				top.expectKey = true
			}
		}
	}
}

// fhirNS is the namespace of FHIR XML; elements without one are read too.
const fhirNS = "http://hl7.org/fhir"

// xmlNHSNumbers walks FHIR XML: an element with <system value="..."/> of an
// NHS number system and <value value="..."/> children is an NHS number
// Identifier.
func xmlNHSNumbers(b []byte) []string {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	type frame struct{ system, val string }
	var stack []frame
	var out []string
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return out
			}
			if n := len(stack); n > 0 && (t.Name.Space == fhirNS || t.Name.Space == "") {
				for _, a := range t.Attr {
					if a.Name.Local != "value" || a.Name.Space != "" {
						continue
					}
					switch t.Name.Local {
					case "system":
						stack[n-1].system = a.Value
					case "value":
						stack[n-1].val = a.Value
					}
				}
			}
			stack = append(stack, frame{})
		case xml.EndElement:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if isNHSSystem(f.system) && f.val != "" {
				out = append(out, f.val)
			}
		}
	}
}

// MaxPeek is the most PeekBody reads: far more than any Foundations or
// Appointment Management request body.
const MaxPeek = 1 << 20

// PeekBody reads up to limit bytes of r's body for a View and puts them back
// in front of the rest, so the body still goes on whole (the SSP forwards
// it unchanged). Call it only when Set.NeedsBody says a rule will look. A
// failed read is returned with what was read; the body then replays those
// bytes and the error.
func PeekBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, limit))
	rest := io.Reader(r.Body)
	if err != nil {
		rest = io.MultiReader(errReader{err})
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), rest), r.Body}
	return head, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
