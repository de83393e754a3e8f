package fhir

import (
	"strconv"
	"unicode/utf8"
)

// xmlWriter writes XML from a parsed JSON resource, walking stu3Types so that
// elements come out in definition order whatever the JSON member order.
type xmlWriter struct {
	buf   []byte
	depth int // open XML elements, bounded by maxDepth as XMLToJSON bounds them
	path  []pathSeg
	slots []slot // a stack shared by the nested objects, to spare allocations
}

// slot is one element of a JSON object: its value member and/or its
// "_name" member (a primitive's id and extensions).
type slot struct {
	def  int
	ty   typeID
	name string // the element name (for a choice, e.g. valueString)
	val  *jvalue
	ext  *jvalue
}

func (w *xmlWriter) push(name string, idx int) { w.path = append(w.path, pathSeg{name, idx}) }
func (w *xmlWriter) pop()                      { w.path = w.path[:len(w.path)-1] }

// open counts an element about to be written.
func (w *xmlWriter) open() error {
	w.depth++
	if w.depth > maxDepth {
		return w.fail("nested deeper than " + strconv.Itoa(maxDepth) + " XML elements")
	}
	return nil
}

func (w *xmlWriter) fail(reason string) error {
	return &Error{Path: formatPath(w.path), Reason: reason}
}

// failAt names a member below the current path.
func (w *xmlWriter) failAt(name string, reason string) error {
	w.push(name, -1)
	err := w.fail(reason)
	w.pop()
	return err
}

// resource writes a resource element; the root declares the FHIR namespace,
// nested resources inherit it.
func (w *xmlWriter) resource(v *jvalue, root bool) error {
	rt, found := "", false
	for i := range v.obj {
		m := &v.obj[i]
		if m.name != "resourceType" {
			continue
		}
		if found {
			return w.failAt("resourceType", "duplicate member \"resourceType\"")
		}
		if m.val.kind != jString {
			return w.failAt("resourceType", "resourceType must be a string")
		}
		rt, found = m.val.s, true
	}
	if !found {
		return w.fail("no resourceType member")
	}
	id, ok := resourceType(rt)
	if !ok {
		if root {
			w.push(rt, -1)
			defer w.pop()
		}
		return w.fail("resource type " + strconv.Quote(rt) + " is not supported")
	}
	if root {
		w.push(rt, -1)
		defer w.pop()
	}
	if err := w.open(); err != nil {
		return err
	}
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, rt...)
	if root {
		w.buf = append(w.buf, ` xmlns="`+fhirNS+`"`...)
	}
	return w.body(rt, &stu3Types[id], v, true)
}

// complex writes a datatype or backbone element.
func (w *xmlWriter) complex(name string, t *typeDef, v *jvalue) error {
	if v.kind != jObject {
		return w.fail(t.name + " must be a JSON object, not " + v.kind.String())
	}
	if err := w.open(); err != nil {
		return err
	}
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	return w.body(name, t, v, false)
}

// body writes the attributes and children of an element whose start tag
// is open ("<name" written), then closes it.
func (w *xmlWriter) body(name string, t *typeDef, v *jvalue, isResource bool) error {
	base := len(w.slots)
	defer func() { w.slots = w.slots[:base] }()
	for i := range v.obj {
		m := &v.obj[i]
		if isResource && m.name == "resourceType" {
			continue
		}
		key, isExt := m.name, false
		if len(key) > 1 && key[0] == '_' {
			key, isExt = key[1:], true
		}
		def, ty, ok := lookup(t, key)
		if !ok {
			return w.failAt(m.name, "unknown member "+strconv.Quote(m.name))
		}
		if isExt && stu3Types[ty].kind != kindPrimitive {
			return w.failAt(m.name, "unknown member "+strconv.Quote(m.name)+" (only primitives have a _ member)")
		}
		if isExt && t.elems[def].attr {
			return w.failAt(m.name, "member "+strconv.Quote(m.name)+" cannot be said in XML")
		}
		if m.val.kind == jNull {
			continue // what encoding/json writes for a nil pointer or slice
		}
		// Find this element's slot, if its other half came first.
		s := -1
		for j := base; j < len(w.slots); j++ {
			if w.slots[j].def == def {
				s = j
				break
			}
		}
		if s < 0 {
			w.slots = append(w.slots, slot{def: def, ty: ty, name: key})
			s = len(w.slots) - 1
		}
		sl := &w.slots[s]
		switch {
		case sl.name != key:
			return w.failAt(m.name, "both "+strconv.Quote(sl.name)+" and "+strconv.Quote(key)+" given for "+t.elems[def].name+"[x]")
		case isExt && sl.ext != nil, !isExt && sl.val != nil:
			return w.failAt(m.name, "duplicate member "+strconv.Quote(m.name))
		case isExt:
			sl.ext = &m.val
		default:
			sl.val = &m.val
		}
	}
	slots := w.slots[base:]
	// Definition order: insertion sort, objects are small.
	for i := 1; i < len(slots); i++ {
		for j := i; j > 0 && slots[j].def < slots[j-1].def; j-- {
			slots[j], slots[j-1] = slots[j-1], slots[j]
		}
	}
	// Attributes (Element.id, Extension.url) go in the start tag.
	for i := range slots {
		sl := &slots[i]
		e := &t.elems[sl.def]
		if !e.attr || sl.val == nil {
			continue
		}
		if sl.val.kind != jString {
			return w.failAt(sl.name, sl.name+" must be a string, not "+sl.val.kind.String())
		}
		if sl.val.s == "" {
			continue
		}
		w.buf = append(w.buf, ' ')
		w.buf = append(w.buf, sl.name...)
		w.buf = append(w.buf, `="`...)
		var err error
		if w.buf, err = appendAttr(w.buf, sl.val.s); err != nil {
			return w.failAt(sl.name, err.Error())
		}
		w.buf = append(w.buf, '"')
	}
	w.buf = append(w.buf, '>')
	mark := len(w.buf)
	for i := range slots {
		sl := &slots[i]
		e := &t.elems[sl.def]
		if e.attr {
			continue
		}
		if err := w.element(sl, e); err != nil {
			return err
		}
	}
	w.depth--
	if len(w.buf) == mark {
		// Nothing but attributes (or only members with no XML form).
		w.buf = append(w.buf[:mark-1], "/>"...)
		return nil
	}
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	return nil
}

// element writes one element's occurrences.
func (w *xmlWriter) element(sl *slot, e *elemDef) error {
	t := &stu3Types[sl.ty]
	if t.kind == kindPrimitive {
		return w.primitives(sl, e.array)
	}
	v := sl.val
	if v == nil || v.kind == jNull {
		return nil
	}
	if !e.array {
		if v.kind == jArray {
			w.push(sl.name, -1)
			defer w.pop()
			return w.fail(sl.name + " must not be an array")
		}
		w.push(sl.name, -1)
		err := w.one(sl.name, t, v)
		w.pop()
		return err
	}
	if v.kind != jArray {
		w.push(sl.name, -1)
		defer w.pop()
		return w.fail(sl.name + " must be an array")
	}
	for i := range v.arr {
		w.push(sl.name, i)
		err := w.one(sl.name, t, &v.arr[i])
		w.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *xmlWriter) one(name string, t *typeDef, v *jvalue) error {
	switch t.kind {
	case kindXHTML:
		if v.kind != jString {
			return w.fail("div must be a string, not " + v.kind.String())
		}
		if err := checkXHTML(v.s, w.depth+1); err != nil {
			return w.fail(err.Error())
		}
		w.buf = append(w.buf, v.s...)
		return nil
	case kindResourceSlot:
		if v.kind != jObject {
			return w.fail(name + " must be a resource (a JSON object), not " + v.kind.String())
		}
		if err := w.open(); err != nil {
			return err
		}
		w.buf = append(w.buf, '<')
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, '>')
		if err := w.resource(v, false); err != nil {
			return err
		}
		w.buf = append(w.buf, "</"...)
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, '>')
		w.depth--
		return nil
	default:
		return w.complex(name, t, v)
	}
}

// primitives writes a primitive element: its JSON value and its "_name"
// sibling (id and extensions), which in an array pair up by position.
func (w *xmlWriter) primitives(sl *slot, array bool) error {
	val, ext := sl.val, sl.ext
	if val != nil && val.kind == jNull {
		val = nil
	}
	if ext != nil && ext.kind == jNull {
		ext = nil
	}
	if !array {
		w.push(sl.name, -1)
		defer w.pop()
		if val != nil && val.kind == jArray || ext != nil && ext.kind == jArray {
			return w.fail(sl.name + " must not be an array")
		}
		return w.primitive(sl.name, sl.ty, val, ext)
	}
	if val != nil && val.kind != jArray || ext != nil && ext.kind != jArray {
		w.push(sl.name, -1)
		defer w.pop()
		return w.fail(sl.name + " must be an array")
	}
	n := 0
	if val != nil {
		n = len(val.arr)
	}
	if ext != nil {
		if val != nil && len(ext.arr) != n {
			w.push(sl.name, -1)
			defer w.pop()
			return w.fail("_" + sl.name + " has " + strconv.Itoa(len(ext.arr)) + " items, " + sl.name + " has " + strconv.Itoa(n))
		}
		n = len(ext.arr)
	}
	for i := 0; i < n; i++ {
		var v, x *jvalue
		if val != nil && val.arr[i].kind != jNull {
			v = &val.arr[i]
		}
		if ext != nil && ext.arr[i].kind != jNull {
			x = &ext.arr[i]
		}
		w.push(sl.name, i)
		if v == nil && x == nil {
			err := w.fail("null in " + sl.name + " without an extension in _" + sl.name)
			w.pop()
			return err
		}
		err := w.primitive(sl.name, sl.ty, v, x)
		w.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

// primitive writes <name id=".." value=".."> with extensions as children.
func (w *xmlWriter) primitive(name string, ty typeID, v, x *jvalue) error {
	var text string
	if v != nil {
		var reason string
		if text, reason = primitiveText(ty, v); reason != "" {
			return w.fail(reason)
		}
	}
	var id, exts *jvalue
	if x != nil {
		if x.kind != jObject {
			return w.fail("_" + name + " must be an object, not " + x.kind.String())
		}
		for i := range x.obj {
			m := &x.obj[i]
			switch {
			case m.name == "id" && id == nil:
				id = &m.val
			case m.name == "extension" && exts == nil:
				exts = &m.val
			case m.name == "id" || m.name == "extension":
				return w.failAt(m.name, "duplicate member "+strconv.Quote(m.name))
			default:
				return w.failAt(m.name, "unknown member "+strconv.Quote(m.name))
			}
		}
		if id != nil && id.kind == jNull {
			id = nil
		}
		if id != nil && id.kind != jString {
			return w.failAt("id", "id must be a string, not "+id.kind.String())
		}
		if exts != nil && exts.kind == jNull || exts != nil && exts.kind == jArray && len(exts.arr) == 0 {
			exts = nil
		}
		if exts != nil && exts.kind != jArray {
			return w.failAt("extension", "extension must be an array")
		}
	}
	if text == "" && exts == nil {
		// An empty string has no XML form (nor has null): the element is
		// left out, unless an id says it was meant to be there.
		if id != nil && id.s != "" {
			return w.fail(name + " has neither a value nor extensions")
		}
		return nil
	}
	if err := w.open(); err != nil {
		return err
	}
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	var err error
	if id != nil && id.s != "" {
		w.buf = append(w.buf, ` id="`...)
		if w.buf, err = appendAttr(w.buf, id.s); err != nil {
			return w.failAt("id", err.Error())
		}
		w.buf = append(w.buf, '"')
	}
	if text != "" {
		w.buf = append(w.buf, ` value="`...)
		if w.buf, err = appendAttr(w.buf, text); err != nil {
			return w.fail(err.Error())
		}
		w.buf = append(w.buf, '"')
	}
	if exts == nil {
		w.buf = append(w.buf, "/>"...)
		w.depth--
		return nil
	}
	w.buf = append(w.buf, '>')
	for i := range exts.arr {
		w.push("extension", i)
		err := w.complex("extension", &stu3Types[tExtension], &exts.arr[i])
		w.pop()
		if err != nil {
			return err
		}
	}
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.depth--
	return nil
}

// primitiveText gives a JSON primitive's XML value text, or why it is wrong.
func primitiveText(ty typeID, v *jvalue) (string, string) {
	t := &stu3Types[ty]
	switch t.json {
	case jsonBool:
		if v.kind != jBool {
			return "", t.name + " must be a JSON boolean, not " + v.kind.String()
		}
		return v.s, ""
	case jsonInt:
		if v.kind != jNumber {
			return "", t.name + " must be a JSON number, not " + v.kind.String()
		}
		if r := checkInt(ty, v.s); r != "" {
			return "", r
		}
		return v.s, ""
	case jsonDecimal:
		if v.kind != jNumber {
			return "", t.name + " must be a JSON number, not " + v.kind.String()
		}
		s, ok := plainDecimal(v.s)
		if !ok {
			return "", "decimal " + v.s + " is out of range"
		}
		return s, ""
	default:
		if v.kind != jString {
			return "", t.name + " must be a JSON string, not " + v.kind.String()
		}
		return v.s, ""
	}
}

type attrError string

func (e attrError) Error() string { return string(e) }

// appendAttr escapes s for a double-quoted attribute value. Tabs and line
// breaks become character references, so that attribute-value normalisation
// does not turn them into spaces; characters XML 1.0 cannot hold are refused.
func appendAttr(buf []byte, s string) ([]byte, error) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == 0xFFFE || r == 0xFFFF || r == utf8.RuneError && size == 1 {
				return buf, attrError("character " + strconv.QuoteRune(r) + " cannot be written in XML")
			}
			i += size
			continue
		}
		var esc string
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#9;"
		case '\n':
			esc = "&#10;"
		case '\r':
			esc = "&#13;"
		default:
			if c < 0x20 {
				return buf, attrError("control character " + strconv.QuoteRune(rune(c)) + " cannot be written in XML")
			}
			i++
			continue
		}
		buf = append(buf, s[start:i]...)
		buf = append(buf, esc...)
		i++
		start = i
	}
	return append(buf, s[start:]...), nil
}
