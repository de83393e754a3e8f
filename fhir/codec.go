package fhir

import (
	"errors"
	"strconv"
	"strings"
)

// The codec converts one FHIR STU3 resource between its JSON form
// (http://hl7.org/fhir/STU3/json.html) and its XML form
// (http://hl7.org/fhir/STU3/xml.html), for the resources sspemu's practices
// read and write: CapabilityStatement, Bundle, OperationOutcome, Parameters,
// Patient, Practitioner, PractitionerRole, Organization, Location, Schedule,
// Slot and Appointment, with every element the STU3 definitions give them and
// every datatype those reach. The type table it walks (stu3_gen.go) is
// generated from the official definitions by internal/gen; see stu3.go for
// how to regenerate it.
//
// Both directions refuse what the definitions do not have (an unknown
// element, attribute or member, a resource type outside the list above),
// naming the item and its path, so that a practice can answer 422
// INVALID_RESOURCE for an XML body exactly as for a JSON one. The XML reader
// refuses DOCTYPEs and entity declarations (so no external entities and no
// entity expansion), other encodings than UTF-8, other namespaces than FHIR's
// (and XHTML's for the narrative), and nesting deeper than maxDepth.
//
// What it does not check: the STU3 patterns of primitive values (a date that
// is not a date passes), required elements, and invariants; those belong to
// the profiles' validation, not to the change of syntax.

const (
	fhirNS  = "http://hl7.org/fhir"
	xhtmlNS = "http://www.w3.org/1999/xhtml"
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
	xsiNS   = "http://www.w3.org/2001/XMLSchema-instance"

	// maxDepth bounds nesting (JSON values, XML elements, narrative markup).
	// Real GP Connect resources stay under 20 (a Bundle entry's resource's
	// extension's extension's value); 100 leaves room for Parameters.part
	// and nested extensions while a hostile input cannot exhaust the stack.
	maxDepth = 100
)

// ErrSyntax matches (errors.Is) codec errors about the input's syntax:
// malformed JSON or XML, a DOCTYPE, another encoding, nesting too deep.
var ErrSyntax = errors.New("fhir: malformed input")

// ErrInvalid matches (errors.Is) codec errors about well-formed input that is
// not an STU3 resource of a supported type: an unknown element, attribute or
// member, a value of the wrong type, a wrong namespace, elements out of order.
var ErrInvalid = errors.New("fhir: invalid resource")

// Error is a codec error: what is wrong and where. Path is a FHIRPath-like
// location of the offending item (Patient.name[0].given[1], or the input
// offset for malformed JSON).
type Error struct {
	Path   string
	Reason string
	Syntax bool // true for ErrSyntax, false for ErrInvalid
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "fhir: " + e.Reason
	}
	return "fhir: " + e.Reason + " at " + e.Path
}

// Is makes errors.Is(err, ErrSyntax) and errors.Is(err, ErrInvalid) work.
func (e *Error) Is(target error) bool {
	return (target == ErrSyntax && e.Syntax) || (target == ErrInvalid && !e.Syntax)
}

// JSONToXML turns one FHIR STU3 resource in JSON into its XML form
// (http://hl7.org/fhir/STU3/xml.html): elements in the STU3 definition
// order, primitives as value attributes, arrays as repeated elements.
// Members whose value is null, empty arrays and empty strings are left out,
// as FHIR has no way to say them in XML. An error is an *Error.
func JSONToXML(data []byte) ([]byte, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	if v.kind != jObject {
		return nil, &Error{Reason: "a FHIR resource must be a JSON object, not " + v.kind.String()}
	}
	w := xmlWriter{buf: make([]byte, 0, len(data)+len(data)/4+64)}
	if err := w.resource(&v, true); err != nil {
		return nil, err
	}
	return w.buf, nil
}

// XMLToJSON turns one FHIR STU3 resource in XML into its JSON form
// (http://hl7.org/fhir/STU3/json.html), members in definition order with
// resourceType first. An element or attribute the STU3 definitions do not
// have is an error that names it. An error is an *Error.
func XMLToJSON(data []byte) ([]byte, error) {
	return xmlToJSON(data)
}

// pathSeg is one step of an error path: an element name and, in an array,
// its index (-1 otherwise).
type pathSeg struct {
	name string
	idx  int
}

func formatPath(segs []pathSeg) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
		if s.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// lookup finds the element of t that a JSON member or XML element name
// stands for; for a choice (value[x]) it also gives the concrete type.
func lookup(t *typeDef, name string) (int, typeID, bool) {
	for i := range t.elems {
		e := &t.elems[i]
		if e.choice == nil {
			if e.name == name {
				return i, e.typ, true
			}
			continue
		}
		if len(name) > len(e.name) && name[:len(e.name)] == e.name {
			for _, c := range e.choice {
				if c.name == name {
					return i, c.typ, true
				}
			}
		}
	}
	return 0, 0, false
}

// checkInt checks an integer primitive's text (integer, positiveInt,
// unsignedInt): the STU3 pattern and the 32-bit range.
func checkInt(ty typeID, s string) string {
	if s == "" {
		return "empty integer"
	}
	digits := s
	if s[0] == '-' {
		digits = s[1:]
	}
	if digits == "" || (digits[0] == '0' && len(digits) > 1) {
		return "integer " + strconv.Quote(s) + " is not in the STU3 form"
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "integer " + strconv.Quote(s) + " is not in the STU3 form"
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return "integer " + strconv.Quote(s) + " is out of the 32-bit range"
	}
	switch {
	case ty == tPositiveInt && n < 1:
		return "positiveInt " + s + " is not positive"
	case ty == tUnsignedInt && n < 0:
		return "unsignedInt " + s + " is negative"
	}
	return ""
}

// checkDecimal checks a decimal's text against the STU3 pattern
// -?(0|[1-9][0-9]*)(\.[0-9]+)? (which is also JSON's number without exponent).
func checkDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

// plainDecimal writes a JSON number with an exponent (1.5e-7, as Go's
// encoding/json writes small floats) without one, keeping every digit, since
// STU3 XML decimals have no exponent. The input is a valid JSON number.
func plainDecimal(s string) (string, bool) {
	e := strings.IndexAny(s, "eE")
	if e < 0 {
		return s, true
	}
	mant, exps := s[:e], s[e+1:]
	exp, err := strconv.Atoi(exps)
	if err != nil || exp > 400 || exp < -400 {
		return "", false
	}
	neg := mant[0] == '-'
	if neg {
		mant = mant[1:]
	}
	intPart, frac := mant, ""
	if dot := strings.IndexByte(mant, '.'); dot >= 0 {
		intPart, frac = mant[:dot], mant[dot+1:]
	}
	digits := intPart + frac
	point := len(intPart) + exp // position of the decimal point in digits
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	case point >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.WriteString(digits[:point])
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	out := b.String()
	// Strip leading zeros of the integer part (00.5, 012).
	sign := ""
	if neg {
		sign, out = "-", out[1:]
	}
	for len(out) > 1 && out[0] == '0' && out[1] != '.' {
		out = out[1:]
	}
	return sign + out, true
}
