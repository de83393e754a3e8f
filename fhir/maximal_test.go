package fhir

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sspemu/fhir/fhirtest"
)

// The maximal test builds, for each resource the codec covers, an instance
// with every element the generated table gives it (every choice type, every
// datatype down to a few levels, an id on every resource-level primitive),
// walking the official XML schema alongside to pick valid codes; it checks
// that the table's elements are the schema's, in the schema's order, that
// the codec's XML for the instance is valid STU3, and that it reads back to
// the same JSON.

type xsdType struct {
	base      string
	elems     []xsdElem
	valueType string // the value attribute's type (a code list for bound codes)
}

type xsdElem struct{ name, typ string }

type xsdSchema struct {
	types map[string]*xsdType
	enums map[string]string // simple type -> its first enumeration
}

func loadXSD(t *testing.T) *xsdSchema {
	t.Helper()
	f, err := os.Open(fhirtest.SchemaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &xsdSchema{types: map[string]*xsdType{}, enums: map[string]string{}}
	d := xml.NewDecoder(f)
	var cur *xsdType
	simple := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return s
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			attr := func(n string) string {
				for _, a := range e.Attr {
					if a.Name.Local == n {
						return a.Value
					}
				}
				return ""
			}
			switch e.Name.Local {
			case "complexType":
				if n := attr("name"); n != "" {
					cur = &xsdType{}
					s.types[n] = cur
				}
			case "simpleType":
				simple = attr("name")
			case "enumeration":
				if _, ok := s.enums[simple]; !ok && simple != "" {
					s.enums[simple] = attr("value")
				}
			case "extension", "restriction":
				if cur != nil && cur.base == "" {
					cur.base = attr("base")
				}
			case "element":
				if cur != nil {
					name, typ := attr("name"), attr("type")
					if ref := attr("ref"); ref != "" {
						name, typ = ref[strings.IndexByte(ref, ':')+1:], ref
					}
					cur.elems = append(cur.elems, xsdElem{name, typ})
				}
			case "attribute":
				if cur != nil && attr("name") == "value" {
					cur.valueType = attr("type")
				}
			}
		case xml.EndElement:
			if e.Name.Local == "complexType" {
				cur = nil
			}
		}
	}
}

// elems lists a schema type's elements, its bases' first.
func (s *xsdSchema) elems(name string) []xsdElem {
	t := s.types[name]
	if t == nil {
		return nil
	}
	return append(s.elems(t.base), t.elems...)
}

var samples = map[typeID]any{
	tBase64Binary: "aGVsbG8=", tBoolean: true, tCode: "x1", tDate: "2024-03-06",
	tDateTime: "2024-03-06T09:00:00+00:00", tDecimal: json.Number("1.50"), tId: "a-1.b",
	tInstant: "2024-03-06T09:00:00.000Z", tInteger: json.Number("-7"), tMarkdown: "*m*",
	tOid: "urn:oid:1.2.3", tPositiveInt: json.Number("3"), tString: "s t", tTime: "09:30:00",
	tUnsignedInt: json.Number("0"), tUri: "http://example.org/u",
}

type maximal struct {
	t       *testing.T
	xsd     *xsdSchema
	alt     int
	checked map[string]bool
}

// compare checks once per pair that a table type and its schema type have
// the same elements in the same order.
func (m *maximal) compare(id typeID, xsdName string, xs []xsdElem) {
	key := stu3Types[id].name + "/" + xsdName
	if m.checked[key] {
		return
	}
	m.checked[key] = true
	var mine, theirs []string
	for _, e := range stu3Types[id].elems {
		switch {
		case e.attr:
		case e.choice != nil:
			for _, c := range e.choice {
				mine = append(mine, c.name)
			}
		default:
			mine = append(mine, e.name)
		}
	}
	for _, e := range xs {
		theirs = append(theirs, e.name)
	}
	if !slices.Equal(mine, theirs) {
		m.t.Errorf("%s: the table's elements differ from the schema's %s:\ntable  %v\nschema %v", stu3Types[id].name, xsdName, mine, theirs)
	}
}

func (m *maximal) object(id typeID, xsdName string, depth int, resourceLevel bool) map[string]any {
	t := &stu3Types[id]
	xs := m.xsd.elems(xsdName)
	if xs == nil {
		m.t.Fatalf("%s: no schema type %q", t.name, xsdName)
	}
	m.compare(id, xsdName, xs)
	xsdOf := func(name string) string {
		for _, e := range xs {
			if e.name == name {
				return e.typ
			}
		}
		m.t.Fatalf("%s: no element %s in schema type %s", t.name, name, xsdName)
		return ""
	}
	out := map[string]any{}
	if t.kind == kindResource {
		out["resourceType"] = t.name
	}
	for i, e := range t.elems {
		if e.attr {
			if e.name == "url" {
				out["url"] = "http://example.org/fhir/StructureDefinition/x" + strconv.Itoa(i)
			} else {
				out[e.name] = "e" + strconv.Itoa(depth)
			}
			continue
		}
		if depth > 3 && e.min == 0 {
			continue
		}
		if e.choice != nil {
			if id == tExtension && depth == 1 {
				continue // the resource's extensions carry every value type (below)
			}
			c := e.choice[m.alt%len(e.choice)]
			if e.array {
				m.t.Fatalf("%s.%s: an array choice", t.name, e.name)
			}
			m.put(out, c.name, c.typ, xsdOf(c.name), false, depth, resourceLevel)
			continue
		}
		if e.name == "extension" && resourceLevel {
			// One extension per value type of Extension.value[x].
			var exts []any
			v, _, _ := lookup(&stu3Types[tExtension], "valueString")
			for _, c := range stu3Types[tExtension].elems[v].choice {
				ext := m.object(tExtension, "Extension", depth+1, false)
				m.put(ext, c.name, c.typ, xsdOf2(m, "Extension", c.name), false, depth+1, false)
				exts = append(exts, ext)
			}
			out["extension"] = exts
			continue
		}
		m.put(out, e.name, e.typ, xsdOf(e.name), e.array, depth, resourceLevel)
	}
	return out
}

func xsdOf2(m *maximal, xsdName, name string) string {
	for _, e := range m.xsd.elems(xsdName) {
		if e.name == name {
			return e.typ
		}
	}
	m.t.Fatalf("no element %s in schema type %s", name, xsdName)
	return ""
}

// put sets one element's JSON value (and, at resource level, an id for a
// primitive through its _name member).
func (m *maximal) put(out map[string]any, name string, ty typeID, xsdName string, array bool, depth int, resourceLevel bool) {
	t := &stu3Types[ty]
	var v any
	switch t.kind {
	case kindPrimitive:
		v = samples[ty]
		if x := m.xsd.types[xsdName]; x != nil && strings.HasSuffix(x.valueType, "-list") {
			v = m.xsd.enums[x.valueType]
		}
		if xsdName == "SampledDataDataType" { // a string of its own pattern
			v = "1 2.5 E L"
		}
		if resourceLevel {
			var x any = map[string]any{"id": "p-" + name}
			if array {
				x = []any{x}
			}
			out["_"+name] = x
		}
	case kindXHTML:
		v = `<div xmlns="http://www.w3.org/1999/xhtml"><p>every <b>element</b></p></div>`
	case kindResourceSlot:
		v = map[string]any{"resourceType": "Organization", "id": "c1", "name": "Contained"}
	default:
		v = m.object(ty, xsdName, depth+1, false)
	}
	if array {
		v = []any{v}
	}
	out[name] = v
}

func TestEveryElement(t *testing.T) {
	// The samples are valid values of their types.
	for ty, v := range samples {
		s := strings.Trim(jsonText(t, v), `"`)
		if re := stu3Types[ty].regex; re != "" && !regexp.MustCompile(`^(?:`+re+`)$`).MatchString(s) {
			t.Errorf("sample %q does not match the %s regex %s", s, stu3Types[ty].name, re)
		}
	}
	xsd := loadXSD(t)
	for i := range stu3Types {
		if stu3Types[i].kind != kindResource {
			continue
		}
		for alt := 0; alt < 2; alt++ {
			id, name := typeID(i), stu3Types[i].name
			t.Run(name+"/"+strconv.Itoa(alt), func(t *testing.T) {
				m := &maximal{t: t, xsd: xsd, alt: alt, checked: map[string]bool{}}
				in := []byte(jsonText(t, m.object(id, name, 0, true)))
				if t.Failed() {
					return
				}
				t.Parallel()
				x, err := JSONToXML(in)
				if err != nil {
					t.Fatalf("JSONToXML: %v", err)
				}
				fhirtest.ValidateXML(t, x)
				back, err := XMLToJSON(x)
				if err != nil {
					t.Fatalf("XMLToJSON: %v", err)
				}
				if got, want := decode(t, back), decode(t, in); !reflect.DeepEqual(got, want) {
					t.Fatalf("JSON → XML → JSON changed the resource:\n got %s\nwant %s", back, in)
				}
			})
		}
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
