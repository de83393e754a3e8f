package gpconnect

import (
	"mime"
	"net/url"
	"strconv"
	"strings"
)

// Format is a FHIR wire format: the two GP Connect allows.
type Format int

// The FHIR formats. JSON is mandatory for providers, XML optional.
const (
	FormatJSON Format = iota
	FormatXML
)

// The FHIR STU3 MIME types GP Connect 1.2.7 uses.
const (
	MIMEJSON = "application/fhir+json"
	MIMEXML  = "application/fhir+xml"
)

// ContentType returns the Content-Type header value for f, with the
// charset parameter written without a space as the specification shows it.
func (f Format) ContentType() string {
	if f == FormatXML {
		return MIMEXML + ";charset=utf-8"
	}
	return MIMEJSON + ";charset=utf-8"
}

// String names the format for logs and reasons.
func (f Format) String() string {
	if f == FormatXML {
		return "xml"
	}
	return "json"
}

// negotiation is what one source of preference (_format, Accept,
// Content-Type) says: nothing, a format, or only unsupported types.
type negotiation int

const (
	saysNothing negotiation = iota
	saysFormat
	saysUnsupported
)

// NegotiateResponse picks the response format the way a GP Connect provider
// must: the _format query parameter first, then Accept, then Content-Type,
// then JSON. The first source that names a type decides; when it names only
// unsupported types ok is false (the caller answers 415) and f is the best
// format the remaining sources allow, so the 415 body is still readable.
// Wildcards in Accept (*/*, application/*) express no preference.
func NegotiateResponse(rawQuery, accept, contentType string) (f Format, ok bool) {
	sources := []func() (Format, negotiation){
		func() (Format, negotiation) { return fromFormatParam(rawQuery) },
		func() (Format, negotiation) { return fromAccept(accept) },
		func() (Format, negotiation) { return fromContentType(contentType) },
	}
	for i, src := range sources {
		f, n := src()
		switch n {
		case saysFormat:
			return f, true
		case saysUnsupported:
			for _, rest := range sources[i+1:] {
				if f, n := rest(); n == saysFormat {
					return f, false
				}
			}
			return FormatJSON, false
		}
	}
	return FormatJSON, true
}

// AcceptableBody reports whether a request body's Content-Type is a FHIR
// type (application/fhir+json or application/fhir+xml, optionally with
// charset=utf-8), and which format to parse it as.
func AcceptableBody(contentType string) (Format, bool) {
	f, _, ok := parseFHIRType(contentType, false)
	return f, ok
}

// fromFormatParam reads the first _format query parameter. The query is
// split by hand because url.ParseQuery turns the '+' of an unencoded
// "application/fhir+json" into a space.
func fromFormatParam(rawQuery string) (Format, negotiation) {
	for _, pair := range strings.Split(rawQuery, "&") {
		key, value, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err != nil || k != "_format" {
			continue
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return FormatJSON, saysUnsupported
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(v) {
		case "":
			return FormatJSON, saysNothing
		case "json":
			return FormatJSON, saysFormat
		case "xml":
			return FormatXML, saysFormat
		}
		if f, _, ok := parseFHIRType(v, false); ok {
			return f, saysFormat
		}
		return FormatJSON, saysUnsupported
	}
	return FormatJSON, saysNothing
}

// fromAccept picks the FHIR type with the highest q value (the first on a
// tie) from an Accept header.
func fromAccept(accept string) (Format, negotiation) {
	if strings.TrimSpace(accept) == "" {
		return FormatJSON, saysNothing
	}
	best, bestQ, found, wildcard := FormatJSON, -1.0, false, false
	for _, item := range strings.Split(accept, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		if f, q, ok := parseFHIRType(item, true); ok {
			if q > 0 && q > bestQ {
				best, bestQ, found = f, q, true
			}
			continue
		}
		if isWildcard(item) {
			wildcard = true
		}
	}
	switch {
	case found:
		return best, saysFormat
	case wildcard:
		return FormatJSON, saysNothing
	}
	return FormatJSON, saysUnsupported
}

func isWildcard(item string) bool {
	mt, params, err := mime.ParseMediaType(item)
	if err != nil || (mt != "*/*" && mt != "application/*") {
		return false
	}
	if q, ok := params["q"]; ok {
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return true
}

func fromContentType(contentType string) (Format, negotiation) {
	if strings.TrimSpace(contentType) == "" {
		return FormatJSON, saysNothing
	}
	if f, _, ok := parseFHIRType(contentType, false); ok {
		return f, saysFormat
	}
	return FormatJSON, saysUnsupported
}

// parseFHIRType reads one media type. Only the two FHIR types are
// supported; the only parameters allowed are charset=utf-8 and, in Accept,
// q. q defaults to 1.
func parseFHIRType(s string, allowQ bool) (Format, float64, bool) {
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(s))
	if err != nil {
		return FormatJSON, 0, false
	}
	var f Format
	switch mt {
	case MIMEJSON:
		f = FormatJSON
	case MIMEXML:
		f = FormatXML
	default:
		return FormatJSON, 0, false
	}
	q := 1.0
	for k, v := range params {
		switch {
		case k == "charset" && strings.EqualFold(v, "utf-8"):
		case k == "q" && allowQ:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || x > 1 {
				return FormatJSON, 0, false
			}
			q = x
		default:
			return FormatJSON, 0, false
		}
	}
	return f, q, true
}
