package fhir

import (
	"bytes"
	"strconv"
	"strings"
)

// jsonWriter reads FHIR XML token by token and writes JSON as it goes. The
// XML must have its elements in definition order (as the STU3 schema
// requires), which lets an array's items and a primitive's _name sibling be
// written without building a tree.
type jsonWriter struct {
	s    *scanner
	buf  []byte
	path []pathSeg
	runs []primRun // per depth, reused
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
	s := newScanner(string(data))
	if err := s.checkChars(); err != nil {
		return nil, err
	}
	if err := s.prolog(); err != nil {
		return nil, err
	}
	w := &jsonWriter{s: s, buf: make([]byte, 0, len(data)+64)}
	if err := s.next(); err != nil {
		return nil, err
	}
	// Outside the root the scanner passes over white space and comments, and
	// refuses the rest: this is the root's start tag.
	if s.space != fhirNS {
		return nil, w.failName(s.local, "root element <"+s.qname+"> is not in the FHIR namespace "+fhirNS)
	}
	id, ok := resourceType(s.local)
	if !ok {
		return nil, w.failName(s.local, "resource type "+strconv.Quote(s.local)+" is not supported")
	}
	w.path = append(w.path, pathSeg{s.local, -1})
	if err := w.object(id, true); err != nil {
		return nil, err
	}
	if err := s.next(); err != nil {
		return nil, err
	}
	return w.buf, nil // s.next refuses anything but tokEOF after the root
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

// noAttrs checks the attributes of an element that has none of its own (a
// resource or a resource slot): namespace declarations only, and
// xsi:schemaLocation on the root.
func (w *jsonWriter) noAttrs(root bool) error {
	for _, a := range w.s.attrs {
		if a.nsDecl || root && a.space == xsiNS && a.local == "schemaLocation" {
			continue
		}
		return w.fail("unknown attribute " + strconv.Quote(attrName(a)))
	}
	return nil
}

func attrName(a xattr) string {
	if a.space == "" {
		return a.local
	}
	return "{" + a.space + "}" + a.local
}

// skippable passes over white space and comments inside an element whose
// content is elements only; other text is refused.
func (w *jsonWriter) skippable(in string) error {
	if w.s.kind == tokText && strings.Trim(w.s.text, " \t\r\n") != "" {
		return w.fail("text is not allowed in " + in)
	}
	return nil
}

// object writes a resource (isResource), datatype or backbone element whose
// start tag is the current token, as a JSON object.
func (w *jsonWriter) object(id typeID, isResource bool) error {
	s := w.s
	t := &stu3Types[id]
	self := s.local
	w.buf = append(w.buf, '{')
	first := true
	if isResource {
		if err := w.noAttrs(len(w.path) == 1); err != nil {
			return err
		}
		w.buf = append(w.buf, `"resourceType":"`...)
		w.buf = append(w.buf, t.name...)
		w.buf = append(w.buf, '"')
		first = false
	} else {
		for _, a := range s.attrs {
			if a.nsDecl {
				continue
			}
			def, ok := -1, false
			if a.space == "" {
				def, _, ok = lookup(t, a.local)
			}
			if !ok || !t.elems[def].attr {
				return w.fail("unknown attribute " + strconv.Quote(attrName(a)))
			}
			if a.value == "" {
				return w.fail("empty " + a.local + " attribute")
			}
			if !first {
				w.buf = append(w.buf, ',')
			}
			first = false
			w.buf = appendJSONString(w.buf, a.local)
			w.buf = append(w.buf, ':')
			w.buf = appendJSONString(w.buf, a.value)
		}
	}
	cur := -1        // the element whose run is open
	curName := ""    // its name (for a choice, the concrete one)
	curPrim := false // a primitive run, in w.runs[level]
	curArray := false
	count := 0
	level := s.depth()
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
		if err := s.next(); err != nil {
			return err
		}
		switch s.kind {
		case tokEnd:
			flush()
			w.buf = append(w.buf, '}')
			return nil
		case tokText, tokComment:
			if err := w.skippable(self); err != nil {
				return err
			}
			continue
		}
		name := s.local
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
		if s.space != wantNS {
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
		var err error
		if curPrim {
			err = w.primitive(ty, level)
		} else {
			if curArray && idx > 0 {
				w.buf = append(w.buf, ',')
			}
			err = w.child(ty)
		}
		if err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
	}
}

// child writes a non-primitive child element's JSON value.
func (w *jsonWriter) child(ty typeID) error {
	switch stu3Types[ty].kind {
	case kindXHTML:
		s := w.s
		start := s.off
		declared := false
		for _, a := range s.attrs {
			if a.nsDecl && a.qname == "xmlns" && a.value == xhtmlNS {
				declared = true
			}
		}
		var canon []byte
		prefixed, err := readXHTML(s, 0, &canon)
		if err != nil {
			if _, ok := err.(*Error); ok {
				return err
			}
			return w.fail(err.Error())
		}
		if declared && !prefixed {
			// The markup means the same out of this document: keep it as written.
			w.buf = appendJSONString(w.buf, s.src[start:s.pos])
		} else {
			w.buf = appendJSONBytes(w.buf, canon)
		}
		return nil
	case kindResourceSlot:
		return w.slot()
	default:
		return w.object(ty, false)
	}
}

// slot writes the one resource inside <contained>, <resource> or <outcome>.
func (w *jsonWriter) slot() error {
	s := w.s
	self := s.local
	if err := w.noAttrs(false); err != nil {
		return err
	}
	seen := false
	for {
		if err := s.next(); err != nil {
			return err
		}
		switch s.kind {
		case tokEnd:
			if !seen {
				return w.fail(self + " holds no resource")
			}
			return nil
		case tokText, tokComment:
			if err := w.skippable(self); err != nil {
				return err
			}
			continue
		}
		if seen {
			return w.failName(s.local, self+" holds more than one resource")
		}
		if s.space != fhirNS {
			return w.failName(s.local, "element "+strconv.Quote(s.local)+" is not in the namespace "+fhirNS)
		}
		id, ok := resourceType(s.local)
		if !ok {
			return w.fail("resource type " + strconv.Quote(s.local) + " is not supported")
		}
		seen = true
		if err := w.object(id, true); err != nil {
			return err
		}
	}
}

// primitive reads one primitive element into its run: the value attribute,
// and the id attribute and extension children for the _name member. The run
// sits at w.runs[level]; nested extensions may grow w.runs, so it is looked
// up again after them.
func (w *jsonWriter) primitive(ty typeID, level int) error {
	s := w.s
	self := s.local
	r := &w.runs[level]
	var value, id string
	hasValue, hasID := false, false
	for _, a := range s.attrs {
		switch {
		case a.nsDecl:
		case a.space == "" && a.local == "value":
			if a.value == "" {
				return w.fail("empty value attribute (STU3 values have at least one character)")
			}
			value, hasValue = a.value, true
		case a.space == "" && a.local == "id":
			if a.value == "" {
				return w.fail("empty id attribute")
			}
			id, hasID = a.value, true
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
		if err := s.next(); err != nil {
			return err
		}
		switch s.kind {
		case tokEnd:
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
				return w.fail(self + " has neither a value nor extensions")
			}
			return nil
		case tokText, tokComment:
			if w.s.kind == tokText && strings.Trim(w.s.text, " \t\r\n") != "" {
				return w.fail("text is not allowed in " + self + " (a primitive's value is its value attribute)")
			}
			continue
		}
		if s.local != "extension" {
			return w.failName(s.local, "unknown element "+strconv.Quote(s.local))
		}
		if s.space != fhirNS {
			return w.failName(s.local, "element \"extension\" is not in the namespace "+fhirNS)
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
		err := w.object(tExtension, false)
		r = &w.runs[level]
		r.exts = w.buf
		w.buf = main
		if err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
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
