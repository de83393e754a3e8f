package fhir

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
)

// jsonWriter reads FHIR XML token by token and writes JSON as it goes. The
// XML must have its elements in definition order (as the STU3 schema
// requires), which lets an array's items and a primitive's _name sibling be
// written without building a tree.
type jsonWriter struct {
	d     *xml.Decoder
	src   []byte
	buf   []byte
	path  []pathSeg
	depth int
	off   int64     // input offset of the token last read
	runs  []primRun // per depth, reused
}

// primRun gathers the occurrences of one primitive element (a run of
// <given> elements): their values, and their ids and extensions, which JSON
// puts in a separate _given member.
type primRun struct {
	vals, exts     []byte
	hasVal, hasExt bool
	n              int
}

func xmlToJSON(data []byte) ([]byte, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	w := &jsonWriter{src: data, buf: make([]byte, 0, len(data)+64)}
	w.d = xml.NewDecoder(bytes.NewReader(data))
	// Prolog: an XML declaration (UTF-8 only: the decoder has no
	// CharsetReader), comments, white space; a DOCTYPE is refused.
	var root xml.StartElement
	for {
		tok, err := w.token()
		if err == io.EOF {
			return nil, &Error{Reason: "no root element", Syntax: true}
		}
		if err != nil {
			return nil, err
		}
		if t, ok := tok.(xml.StartElement); ok {
			root = t
			break
		}
		if err := w.between(tok); err != nil {
			return nil, err
		}
	}
	if root.Name.Space != fhirNS {
		return nil, w.failName(root.Name.Local, "root element <"+root.Name.Local+"> is not in the FHIR namespace "+fhirNS)
	}
	id, ok := resourceType(root.Name.Local)
	if !ok {
		return nil, w.failName(root.Name.Local, "resource type "+strconv.Quote(root.Name.Local)+" is not supported")
	}
	w.path = append(w.path, pathSeg{root.Name.Local, -1})
	if err := w.object(root, id, true); err != nil {
		return nil, err
	}
	for {
		tok, err := w.token()
		if err == io.EOF {
			return w.buf, nil
		}
		if err != nil {
			return nil, err
		}
		if _, ok := tok.(xml.StartElement); ok {
			return nil, &Error{Reason: "content after the root element", Syntax: true}
		}
		if err := w.between(tok); err != nil {
			return nil, err
		}
	}
}

// between accepts what may stand outside the root element.
func (w *jsonWriter) between(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.CharData:
		if !isSpace(t) {
			return &Error{Reason: "text outside the root element", Syntax: true}
		}
	case xml.Directive:
		return &Error{Reason: "DOCTYPE and other declarations are not allowed", Syntax: true}
	case xml.ProcInst:
		if t.Target != "xml" {
			return &Error{Reason: "processing instruction <?" + t.Target + "?> is not allowed", Syntax: true}
		}
	}
	return nil
}

// token reads the next token, bounding the depth and turning the decoder's
// errors into codec errors.
func (w *jsonWriter) token() (xml.Token, error) {
	w.off = w.d.InputOffset()
	tok, err := w.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		return nil, &Error{Reason: "malformed XML: " + strings.TrimPrefix(err.Error(), "XML syntax error on "), Syntax: true}
	}
	switch tok.(type) {
	case xml.StartElement:
		w.depth++
		if w.depth > maxDepth {
			return nil, &Error{Path: formatPath(w.path), Reason: "nested deeper than " + strconv.Itoa(maxDepth), Syntax: true}
		}
	case xml.EndElement:
		w.depth--
	case xml.Directive:
		return nil, &Error{Reason: "DOCTYPE and other declarations are not allowed", Syntax: true}
	}
	return tok, nil
}

func (w *jsonWriter) fail(reason string) error {
	return &Error{Path: formatPath(w.path), Reason: reason}
}

func (w *jsonWriter) failName(name, reason string) error {
	w.path = append(w.path, pathSeg{name, -1})
	err := w.fail(reason)
	w.path = w.path[:len(w.path)-1]
	return err
}

// attrs checks the attributes of an element that has none of its own (a
// resource or a resource slot): namespace declarations only, and
// xsi:schemaLocation on the root.
func (w *jsonWriter) noAttrs(t xml.StartElement, root bool) error {
	for _, a := range t.Attr {
		if isNSDecl(a) || root && a.Name.Space == xsiNS && a.Name.Local == "schemaLocation" {
			continue
		}
		return w.fail("unknown attribute " + strconv.Quote(attrName(a)))
	}
	return nil
}

func attrName(a xml.Attr) string {
	if a.Name.Space == "" {
		return a.Name.Local
	}
	return "{" + a.Name.Space + "}" + a.Name.Local
}

// object writes a resource (isResource), datatype or backbone element whose
// start tag was just read, as a JSON object.
func (w *jsonWriter) object(start xml.StartElement, id typeID, isResource bool) error {
	t := &stu3Types[id]
	w.buf = append(w.buf, '{')
	first := true
	if isResource {
		if err := w.noAttrs(start, len(w.path) == 1); err != nil {
			return err
		}
		w.buf = append(w.buf, `"resourceType":"`...)
		w.buf = append(w.buf, t.name...)
		w.buf = append(w.buf, '"')
		first = false
	} else {
		for i, a := range start.Attr {
			if isNSDecl(a) {
				continue
			}
			def, ok := -1, false
			if a.Name.Space == "" {
				def, _, ok = lookup(t, a.Name.Local)
			}
			if !ok || !t.elems[def].attr {
				return w.fail("unknown attribute " + strconv.Quote(attrName(a)))
			}
			for _, b := range start.Attr[:i] {
				if b.Name == a.Name {
					return w.fail("attribute " + strconv.Quote(a.Name.Local) + " is repeated")
				}
			}
			if a.Value == "" {
				return w.fail("empty " + a.Name.Local + " attribute")
			}
			if !first {
				w.buf = append(w.buf, ',')
			}
			first = false
			w.buf = appendJSONString(w.buf, a.Name.Local)
			w.buf = append(w.buf, ':')
			w.buf = appendJSONString(w.buf, a.Value)
		}
	}
	cur := -1        // the element whose run is open
	curName := ""    // its name (for a choice, the concrete one)
	curPrim := false // a primitive run, in w.runs[depth]
	curArray := false
	count := 0
	level := w.depth
	for len(w.runs) <= level {
		w.runs = append(w.runs, primRun{})
	}
	flush := func() {
		if cur < 0 {
			return
		}
		if curPrim {
			w.flushPrim(curName, &w.runs[level], curArray, &first)
		} else if curArray {
			w.buf = append(w.buf, ']')
		}
		cur = -1
	}
	for {
		tok, err := w.token()
		if err != nil {
			if err == io.EOF {
				return &Error{Reason: "malformed XML: unexpected end of input", Syntax: true}
			}
			return err
		}
		switch c := tok.(type) {
		case xml.EndElement:
			flush()
			w.buf = append(w.buf, '}')
			return nil
		case xml.CharData:
			if !isSpace(c) {
				return w.fail("text is not allowed in " + start.Name.Local)
			}
			continue
		case xml.Comment:
			continue
		case xml.ProcInst:
			return w.fail("processing instruction <?" + c.Target + "?> is not allowed")
		case xml.StartElement:
			name := c.Name.Local
			def, ty, ok := lookup(t, name)
			if !ok || t.elems[def].attr {
				return w.failName(name, "unknown element "+strconv.Quote(name))
			}
			e := &t.elems[def]
			ct := &stu3Types[ty]
			wantNS := fhirNS
			if ct.kind == kindXHTML {
				wantNS = xhtmlNS
			}
			if c.Name.Space != wantNS {
				return w.failName(name, "element "+strconv.Quote(name)+" is not in the namespace "+wantNS)
			}
			switch {
			case def == cur && (!e.array || name != curName):
				return w.failName(name, "element "+strconv.Quote(name)+" is repeated")
			case def < cur:
				return w.failName(name, "element "+strconv.Quote(name)+" is out of order (STU3 puts it before "+strconv.Quote(curName)+")")
			case def != cur:
				flush()
				cur, curName, curArray, count = def, name, e.array, 0
				curPrim = ct.kind == kindPrimitive
				if curPrim {
					r := &w.runs[level]
					r.vals, r.exts, r.hasVal, r.hasExt, r.n = r.vals[:0], r.exts[:0], false, false, 0
				} else {
					if !first {
						w.buf = append(w.buf, ',')
					}
					first = false
					w.buf = appendJSONString(w.buf, name)
					w.buf = append(w.buf, ':')
					if curArray {
						w.buf = append(w.buf, '[')
					}
				}
			}
			idx := -1
			if e.array {
				idx = count
			}
			count++
			w.path = append(w.path, pathSeg{name, idx})
			if curPrim {
				err = w.primitive(c, ty, level)
			} else {
				if curArray && idx > 0 {
					w.buf = append(w.buf, ',')
				}
				err = w.child(c, ty)
			}
			if err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
		}
	}
}

// child writes a non-primitive child element's JSON value.
func (w *jsonWriter) child(start xml.StartElement, ty typeID) error {
	switch stu3Types[ty].kind {
	case kindXHTML:
		startOff := w.off
		var canon []byte
		if err := readXHTML(w.d, start, w.depth, &canon); err != nil {
			return w.fail(err.Error())
		}
		w.depth--
		raw := w.src[startOff:w.d.InputOffset()]
		if rawXHTML(start, raw) {
			w.buf = appendJSONBytes(w.buf, raw)
		} else {
			w.buf = appendJSONBytes(w.buf, canon)
		}
		return nil
	case kindResourceSlot:
		return w.slot(start)
	default:
		return w.object(start, ty, false)
	}
}

// slot writes the one resource inside <contained>, <resource> or <outcome>.
func (w *jsonWriter) slot(start xml.StartElement) error {
	if err := w.noAttrs(start, false); err != nil {
		return err
	}
	seen := false
	for {
		tok, err := w.token()
		if err != nil {
			if err == io.EOF {
				return &Error{Reason: "malformed XML: unexpected end of input", Syntax: true}
			}
			return err
		}
		switch c := tok.(type) {
		case xml.EndElement:
			if !seen {
				return w.fail(start.Name.Local + " holds no resource")
			}
			return nil
		case xml.CharData:
			if !isSpace(c) {
				return w.fail("text is not allowed in " + start.Name.Local)
			}
		case xml.Comment:
		case xml.ProcInst:
			return w.fail("processing instruction <?" + c.Target + "?> is not allowed")
		case xml.StartElement:
			if seen {
				return w.failName(c.Name.Local, start.Name.Local+" holds more than one resource")
			}
			if c.Name.Space != fhirNS {
				return w.failName(c.Name.Local, "element "+strconv.Quote(c.Name.Local)+" is not in the namespace "+fhirNS)
			}
			id, ok := resourceType(c.Name.Local)
			if !ok {
				return w.fail("resource type " + strconv.Quote(c.Name.Local) + " is not supported")
			}
			seen = true
			if err := w.object(c, id, true); err != nil {
				return err
			}
		}
	}
}

// primitive reads one primitive element into its run: the value attribute,
// and the id attribute and extension children for the _name member.
// The run sits at w.runs[level]; nested extensions may grow w.runs, so it is
// looked up again after them.
func (w *jsonWriter) primitive(start xml.StartElement, ty typeID, level int) error {
	r := &w.runs[level]
	var value, id string
	hasValue, hasID := false, false
	for _, a := range start.Attr {
		switch {
		case isNSDecl(a):
		case a.Name.Space == "" && a.Name.Local == "value" && !hasValue:
			if a.Value == "" {
				return w.fail("empty value attribute (STU3 values have at least one character)")
			}
			value, hasValue = a.Value, true
		case a.Name.Space == "" && a.Name.Local == "id" && !hasID:
			if a.Value == "" {
				return w.fail("empty id attribute")
			}
			id, hasID = a.Value, true
		case a.Name.Space == "" && (a.Name.Local == "value" || a.Name.Local == "id"):
			return w.fail("attribute " + strconv.Quote(a.Name.Local) + " is repeated")
		default:
			return w.fail("unknown attribute " + strconv.Quote(attrName(a)))
		}
	}
	if r.n > 0 {
		r.vals = append(r.vals, ',')
		r.exts = append(r.exts, ',')
	}
	r.n++
	if hasValue {
		var reason string
		if r.vals, reason = appendPrimitiveJSON(r.vals, ty, value); reason != "" {
			return w.fail(reason)
		}
		r.hasVal = true
	} else {
		r.vals = append(r.vals, "null"...)
	}
	// The _name object: id first, then extensions as they come.
	extStart := len(r.exts)
	if hasID {
		r.exts = append(r.exts, `{"id":`...)
		r.exts = appendJSONString(r.exts, id)
	}
	exts := 0
	for {
		tok, err := w.token()
		if err != nil {
			if err == io.EOF {
				return &Error{Reason: "malformed XML: unexpected end of input", Syntax: true}
			}
			return err
		}
		switch c := tok.(type) {
		case xml.EndElement:
			switch {
			case exts > 0:
				r.exts = append(r.exts, "]}"...)
			case hasID:
				r.exts = append(r.exts, '}')
			default:
				r.exts = append(r.exts[:extStart], "null"...)
			}
			if exts > 0 || hasID {
				r.hasExt = true
			}
			if !hasValue && exts == 0 {
				return w.fail(start.Name.Local + " has neither a value nor extensions")
			}
			return nil
		case xml.CharData:
			if !isSpace(c) {
				return w.fail("text is not allowed in " + start.Name.Local + " (a primitive's value is its value attribute)")
			}
		case xml.Comment:
		case xml.ProcInst:
			return w.fail("processing instruction <?" + c.Target + "?> is not allowed")
		case xml.StartElement:
			if c.Name.Local != "extension" {
				return w.failName(c.Name.Local, "unknown element "+strconv.Quote(c.Name.Local))
			}
			if c.Name.Space != fhirNS {
				return w.failName(c.Name.Local, "element \"extension\" is not in the namespace "+fhirNS)
			}
			switch {
			case exts > 0:
				r.exts = append(r.exts, ',')
			case hasID:
				r.exts = append(r.exts, `,"extension":[`...)
			default:
				r.exts = append(r.exts, `{"extension":[`...)
			}
			w.path = append(w.path, pathSeg{"extension", exts})
			exts++
			// Extensions write into w.buf: lend it the run's buffer.
			main := w.buf
			w.buf = r.exts
			err := w.object(c, tExtension, false)
			r = &w.runs[level]
			r.exts = w.buf
			w.buf = main
			if err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
		}
	}
}

// flushPrim writes a finished primitive run: "name" and/or "_name".
func (w *jsonWriter) flushPrim(name string, r *primRun, array bool, first *bool) {
	if r.hasVal {
		if !*first {
			w.buf = append(w.buf, ',')
		}
		*first = false
		w.buf = appendJSONString(w.buf, name)
		w.buf = append(w.buf, ':')
		if array {
			w.buf = append(w.buf, '[')
		}
		w.buf = append(w.buf, r.vals...)
		if array {
			w.buf = append(w.buf, ']')
		}
	}
	if r.hasExt {
		if !*first {
			w.buf = append(w.buf, ',')
		}
		*first = false
		w.buf = append(w.buf, `"_`...)
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, `":`...)
		if array {
			w.buf = append(w.buf, '[')
		}
		w.buf = append(w.buf, r.exts...)
		if array {
			w.buf = append(w.buf, ']')
		}
	}
}

// appendPrimitiveJSON writes a primitive's XML value as its JSON value, or
// says why it cannot.
func appendPrimitiveJSON(b []byte, ty typeID, s string) ([]byte, string) {
	t := &stu3Types[ty]
	switch t.json {
	case jsonBool:
		if s != "true" && s != "false" {
			return b, "boolean " + strconv.Quote(s) + " is neither true nor false"
		}
		return append(b, s...), ""
	case jsonInt:
		if r := checkInt(ty, s); r != "" {
			return b, r
		}
		return append(b, s...), ""
	case jsonDecimal:
		if !checkDecimal(s) {
			return b, "decimal " + strconv.Quote(s) + " is not in the STU3 form"
		}
		return append(b, s...), ""
	default:
		return appendJSONString(b, s), ""
	}
}

// appendJSONString writes s as a JSON string; <, > and & stay as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		b = appendJSONEscape(b, c)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendJSONBytes(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		b = appendJSONEscape(b, c)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendJSONEscape(b []byte, c byte) []byte {
	switch c {
	case '"':
		return append(b, `\"`...)
	case '\\':
		return append(b, `\\`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}
