// Command gen writes fhir/stu3_gen.go, the type table that drives the FHIR
// STU3 JSON ⇄ XML codec, from the official STU3 (3.0.1) StructureDefinitions
// that the npm package fhir@3.3.1 ships (profiles/stu3/profiles-types.json and
// profiles-resources.json). Generating it, rather than typing it, keeps the
// element order, cardinalities and choice types exactly those of the standard.
//
// Run it through go generate in fhir/ (it needs bash, npm and network access
// to the npm registry the first time, via scripts/fhir-xsd):
//
//	go generate ./fhir
//
// or by hand, with the unpacked package's fhir-single.xsd path:
//
//	go run ./fhir/internal/gen -xsd "$(bash scripts/fhir-xsd)" -o fhir/stu3_gen.go
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// resources are the resource types the codec covers: those sspemu's
// practices read or write (issue 10). Every datatype they reach comes along.
var resources = []string{
	"Appointment", "Bundle", "CapabilityStatement", "Location", "OperationOutcome",
	"Organization", "Parameters", "Patient", "Practitioner", "PractitionerRole",
	"Schedule", "Slot",
}

const (
	extJSONType = "http://hl7.org/fhir/StructureDefinition/structuredefinition-json-type"
	extXMLType  = "http://hl7.org/fhir/StructureDefinition/structuredefinition-xml-type"
	extRegex    = "http://hl7.org/fhir/StructureDefinition/structuredefinition-regex"
)

type extension struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString"`
}

type elementType struct {
	Code      string      `json:"code"`
	Extension []extension `json:"extension"`
	CodeExt   *struct {
		Extension []extension `json:"extension"`
	} `json:"_code"`
}

type element struct {
	Path             string        `json:"path"`
	SliceName        string        `json:"sliceName"`
	Min              int           `json:"min"`
	Max              string        `json:"max"`
	Type             []elementType `json:"type"`
	ContentReference string        `json:"contentReference"`
	Representation   []string      `json:"representation"`
}

type structureDefinition struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Abstract     bool   `json:"abstract"`
	Type         string `json:"type"`
	Derivation   string `json:"derivation"`
	Snapshot     struct {
		Element []element `json:"element"`
	} `json:"snapshot"`
}

type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

// typeDef is one generated type: a primitive, a datatype, a resource or a
// backbone element (named by its path, e.g. "Patient.contact").
type typeDef struct {
	name   string
	kind   string // kindPrimitive, kindComplex, kindResource, kindBackbone, kindXHTML, kindResourceSlot
	json   string // primitives: jsonString, jsonBool, jsonInt, jsonDecimal
	regex  string
	elems  []elemDef
	parent string // backbone: the path whose children these are
}

type elemDef struct {
	name   string
	typ    string   // target type name (not for choices)
	choice []string // choice type codes, in definition order
	min    int
	max    int // -1 for *
	attr   bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	xsd := flag.String("xsd", "", "path of fhir-single.xsd in the unpacked npm package fhir@3.3.1 (as printed by scripts/fhir-xsd)")
	out := flag.String("o", "stu3_gen.go", "output file")
	flag.Parse()
	if *xsd == "" {
		return errors.New("-xsd is required (bash scripts/fhir-xsd prints it)")
	}
	defs := filepath.Join(filepath.Dir(*xsd), "..", "..", "profiles", "stu3")
	sds := map[string]*structureDefinition{}
	for _, f := range []string{"profiles-types.json", "profiles-resources.json"} {
		if err := load(filepath.Join(defs, f), sds); err != nil {
			return err
		}
	}
	g := &generator{sds: sds, types: map[string]*typeDef{}}
	for _, r := range resources {
		if err := g.add(r); err != nil {
			return err
		}
	}
	src, err := g.source()
	if err != nil {
		return err
	}
	return os.WriteFile(*out, src, 0o644)
}

func load(path string, into map[string]*structureDefinition) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range b.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if head.ResourceType != "StructureDefinition" {
			continue
		}
		var sd structureDefinition
		if err := json.Unmarshal(e.Resource, &sd); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		into[sd.ID] = &sd
	}
	return nil
}

type generator struct {
	sds   map[string]*structureDefinition
	types map[string]*typeDef
}

// add generates the type named by a type code (or a resource name) and,
// through its elements, every type it reaches.
func (g *generator) add(name string) error {
	if _, ok := g.types[name]; ok {
		return nil
	}
	switch name {
	case "Resource":
		// The slot for a whole resource (contained, Bundle.entry.resource,
		// Parameters.parameter.resource): the codec picks the type by name.
		g.types[name] = &typeDef{name: name, kind: "kindResourceSlot"}
		return nil
	case "xhtml":
		g.types[name] = &typeDef{name: name, kind: "kindXHTML", json: "jsonString"}
		return nil
	}
	sd, ok := g.sds[name]
	if !ok {
		return fmt.Errorf("no StructureDefinition for type %q", name)
	}
	t := &typeDef{name: name}
	g.types[name] = t
	switch sd.Kind {
	case "primitive-type":
		t.kind = "kindPrimitive"
		return g.primitive(t, sd)
	case "complex-type":
		t.kind = "kindComplex"
	case "resource":
		t.kind = "kindResource"
	default:
		return fmt.Errorf("%s: unexpected kind %q", name, sd.Kind)
	}
	return g.structure(t, sd)
}

func (g *generator) primitive(t *typeDef, sd *structureDefinition) error {
	var value *element
	for i := range sd.Snapshot.Element {
		if strings.HasSuffix(sd.Snapshot.Element[i].Path, ".value") {
			value = &sd.Snapshot.Element[i]
		}
	}
	if value == nil || len(value.Type) != 1 || value.Type[0].CodeExt == nil {
		return fmt.Errorf("%s: no typed value element", t.name)
	}
	var jsonType, xmlType string
	for _, e := range value.Type[0].CodeExt.Extension {
		switch e.URL {
		case extJSONType:
			jsonType = e.ValueString
		case extXMLType:
			xmlType = e.ValueString
		}
	}
	for _, e := range value.Type[0].Extension {
		if e.URL == extRegex {
			t.regex = e.ValueString
		}
	}
	switch {
	case jsonType == "boolean":
		t.json = "jsonBool"
	case jsonType == "number" && xmlType == "xsd:decimal":
		t.json = "jsonDecimal"
	case jsonType == "number":
		t.json = "jsonInt"
	case jsonType == "string":
		t.json = "jsonString"
	default:
		return fmt.Errorf("%s: unexpected JSON type %q", t.name, jsonType)
	}
	return nil
}

// structure reads a complex type's or resource's snapshot: every element in
// snapshot order, children of backbone elements into types named by path.
func (g *generator) structure(t *typeDef, sd *structureDefinition) error {
	els := sd.Snapshot.Element
	if len(els) == 0 {
		return fmt.Errorf("%s: empty snapshot", t.name)
	}
	root := els[0].Path // a constraint (SimpleQuantity) keeps its base's paths
	owners := map[string]*typeDef{root: t}
	for _, el := range els[1:] {
		if el.SliceName != "" || el.Max == "0" {
			continue
		}
		dot := strings.LastIndexByte(el.Path, '.')
		parentPath, name := el.Path[:dot], el.Path[dot+1:]
		owner, ok := owners[parentPath]
		if !ok {
			return fmt.Errorf("%s: element %s has no parent", t.name, el.Path)
		}
		e := elemDef{name: name, min: el.Min, max: -1, attr: contains(el.Representation, "xmlAttr")}
		if el.Max != "*" {
			if _, err := fmt.Sscan(el.Max, &e.max); err != nil {
				return fmt.Errorf("%s: max %q", el.Path, el.Max)
			}
		}
		switch {
		case el.ContentReference != "":
			e.typ = typeName(sd.Type, strings.TrimPrefix(el.ContentReference, "#"), root)
		case strings.HasSuffix(name, "[x]"):
			e.name = strings.TrimSuffix(name, "[x]")
			for _, ty := range el.Type {
				if !contains(e.choice, ty.Code) {
					e.choice = append(e.choice, ty.Code)
				}
			}
		case len(el.Type) == 0:
			return fmt.Errorf("%s: no type", el.Path)
		case el.Type[0].Code == "BackboneElement" || el.Type[0].Code == "Element":
			bt := &typeDef{name: typeName(sd.Type, el.Path, root), kind: "kindBackbone", parent: el.Path}
			g.types[bt.name] = bt
			owners[el.Path] = bt
			e.typ = bt.name
		default:
			e.typ = el.Type[0].Code
			for _, ty := range el.Type[1:] {
				if ty.Code != e.typ {
					return fmt.Errorf("%s: several types %s without [x]", el.Path, ty.Code)
				}
			}
		}
		if e.typ == "" && len(e.choice) == 0 {
			// Elements of primitive types in the base definitions (e.g.
			// string.value) carry no code: they are attributes the codec
			// handles itself.
			continue
		}
		owner.elems = append(owner.elems, e)
	}
	for _, o := range owners {
		for _, e := range o.elems {
			refs := e.choice
			if e.typ != "" {
				refs = []string{e.typ}
			}
			for _, r := range refs {
				if strings.Contains(r, ".") {
					continue // a backbone type, generated above
				}
				if err := g.add(r); err != nil {
					return fmt.Errorf("%s.%s: %w", o.name, e.name, err)
				}
			}
		}
	}
	return nil
}

// typeName names a backbone type by its path, with the root replaced by the
// type's own name (SimpleQuantity's paths start with Quantity).
func typeName(typ, path, root string) string {
	if path == root {
		return typ
	}
	return typ + strings.TrimPrefix(path, root)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ident turns a type name or path into a Go identifier: t + CamelCase.
func ident(name string) string {
	var b strings.Builder
	b.WriteString("t")
	up := true
	for _, r := range name {
		if r == '.' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func (g *generator) source() ([]byte, error) {
	names := make([]string, 0, len(g.types))
	for n := range g.types {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("// Code generated by fhir/internal/gen from the FHIR STU3 (3.0.1) StructureDefinitions in npm fhir@3.3.1. DO NOT EDIT.\n\n")
	p("package fhir\n\n")
	p("// Type IDs, one per generated type: primitives, datatypes, resources and\n// backbone elements (named by path).\nconst (\n")
	for i, n := range names {
		if i == 0 {
			p("\t%s typeID = iota\n", ident(n))
		} else {
			p("\t%s\n", ident(n))
		}
	}
	p("\tnumTypes\n)\n\n")
	p("// stu3Types is every type the codec knows, indexed by typeID; elements in\n// STU3 definition order.\nvar stu3Types = [numTypes]typeDef{\n")
	for _, n := range names {
		t := g.types[n]
		p("\t%s: {name: %q, kind: %s", ident(n), n, t.kind)
		if t.json != "" {
			p(", json: %s", t.json)
		}
		if t.regex != "" {
			p(", regex: %q", t.regex)
		}
		if len(t.elems) > 0 {
			p(", elems: []elemDef{\n")
			for _, e := range t.elems {
				p("\t\t{name: %q", e.name)
				if e.typ != "" {
					p(", typ: %s", ident(e.typ))
				}
				if len(e.choice) > 0 {
					p(", choice: []choiceDef{")
					for i, c := range e.choice {
						if i > 0 {
							p(", ")
						}
						p("{%q, %s}", e.name+upperFirst(c), ident(c))
					}
					p("}")
				}
				p(", min: %d, max: %d", e.min, e.max)
				if e.max != 1 {
					p(", array: true")
				}
				if e.attr {
					p(", attr: true")
				}
				p("},\n")
			}
			p("\t}")
		}
		p("},\n")
	}
	p("}\n\n")
	p("// resourceType finds a resource type by its name, for the resources this\n// codec covers.\nfunc resourceType(name string) (typeID, bool) {\n\tswitch name {\n")
	for _, n := range names {
		if g.types[n].kind == "kindResource" {
			p("\tcase %q:\n\t\treturn %s, true\n", n, ident(n))
		}
	}
	p("\t}\n\treturn 0, false\n}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return b.Bytes(), fmt.Errorf("gofmt: %w", err)
	}
	return src, nil
}
