package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// structure is one StructureDefinition as the checker uses it: its
// snapshot as a tree of element definitions.
type structure struct {
	url, name, typ, kind string
	root                 *elem
	byID                 map[string]*elem
	file                 string
}

// elem is one ElementDefinition of a snapshot.
type elem struct {
	sd         *structure
	id, path   string
	name       string // the JSON member name: the last path segment ("identifier", "value[x]", "deceasedDateTime")
	sliceName  string
	min        int
	max        int  // -1: unbounded
	list       bool // the base element repeats, so JSON carries it as an array
	types      []typeRef
	fixed      *constant
	pattern    *constant
	binding    *binding
	slicing    *slicing
	contentRef string

	children []*elem // in snapshot order
	slices   []*elem // the named slices, when this element is sliced
	// discValues are, for a slice, the values it fixes at its parent's
	// discriminator paths, in the parent's order ("" when it fixes none).
	discValues []string
}

// typeRef is one ElementDefinition.type.
type typeRef struct {
	code           string // "" for a primitive's internal value element
	profiles       []string
	targetProfiles []string
}

// constant is a fixed[x] or pattern[x] value: its type (the element name's
// suffix, "Uri", "CodeableConcept") and its value in the shape of JSON.
type constant struct {
	kind  string
	value any
}

type binding struct {
	strength string
	valueSet string // the ValueSet's canonical URL, without a version
}

type slicing struct {
	discriminators []discriminator
	ordered        bool
	rules          string // closed, open, openAtEnd
}

type discriminator struct{ kind, path string }

// choice reports whether the element is a choice of types (value[x]).
func (e *elem) choice() bool { return strings.HasSuffix(e.name, "[x]") }

// valueSet is a ValueSet's compose.
type valueSet struct {
	url      string
	includes []include
	excludes []include
}

// include is one compose.include or compose.exclude.
type include struct {
	system    string
	concepts  []string // nil: the whole system
	filtered  bool     // a filter the checker cannot evaluate (SNOMED CT hierarchies)
	valueSets []string
}

// codeSystem is a CodeSystem: every code it defines, at any depth.
type codeSystem struct {
	url     string
	content string // complete, or example, fragment, not-present: then codes are not all of it
	codes   map[string]bool
}

// complete reports whether codes holds every code of the system.
func (cs *codeSystem) complete() bool { return cs.content == "" || cs.content == "complete" }

// Load reads the StructureDefinitions, ValueSets and CodeSystems (FHIR STU3
// XML) under dir, in the layout of nhsconnect/gpconnect-fhir
// (StructureDefinitions/, ValueSets/, CodeSystems/; any .xml file under dir
// is read). A file that is not a well-formed conformance resource is not
// an error of Load: the published 1.2.7 set has one
// (Extension-CareConnect-RelatedProblemHeader-1.xml quotes inside an
// attribute), and the checker reports it, through Unchecked, only where a
// resource needs it. Load fails when dir cannot be read or holds no
// StructureDefinition at all.
func Load(dir string) (*Set, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".xml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile: read %s: %w", dir, err)
	}
	sort.Strings(files)

	type parsed struct {
		root *node
		err  error
	}
	results := make([]parsed, len(files))
	// The published set is 9 MB of XML: parse it on every core.
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, min(8, runtime.NumCPU())))
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := os.ReadFile(f)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].root, results[i].err = parseXML(b)
		}()
	}
	wg.Wait()

	s := newSet(dir)
	for i, f := range files {
		rel, _ := filepath.Rel(dir, f)
		r := results[i]
		if r.err != nil {
			s.broken = append(s.broken, brokenFile{file: rel, err: r.err.Error()})
			continue
		}
		if err := s.add(r.root, rel); err != nil {
			s.broken = append(s.broken, brokenFile{file: rel, err: err.Error()})
		}
	}
	if len(s.structures) == 0 {
		return nil, fmt.Errorf("profile: no StructureDefinition under %s", dir)
	}
	s.index()
	return s, nil
}

// brokenFile is a file Load could not use, and why.
type brokenFile struct{ file, err string }

// add files one parsed conformance resource into the set.
func (s *Set) add(root *node, file string) error {
	switch root.name {
	case "StructureDefinition":
		sd, err := structureOf(root, file)
		if err != nil {
			return err
		}
		if _, dup := s.structures[sd.url]; dup {
			return fmt.Errorf("StructureDefinition %s is defined twice", sd.url)
		}
		s.structures[sd.url] = sd
	case "ValueSet":
		vs := valueSetOf(root)
		if vs.url == "" {
			return errors.New("ValueSet without url")
		}
		s.valueSets[vs.url] = vs
	case "CodeSystem":
		cs := &codeSystem{url: root.val("url"), content: root.val("content"), codes: map[string]bool{}}
		if cs.url == "" {
			return errors.New("CodeSystem without url")
		}
		var walk func(n *node)
		walk = func(n *node) {
			for _, c := range n.all("concept") {
				cs.codes[c.val("code")] = true
				walk(c)
			}
		}
		walk(root)
		s.codeSystems[cs.url] = cs
	default:
		// Other conformance resources (none in the 1.2.7 set) carry no rules
		// the checker applies.
	}
	return nil
}

// structureOf builds the element tree of a StructureDefinition's snapshot.
func structureOf(root *node, file string) (*structure, error) {
	sd := &structure{
		url:  root.val("url"),
		name: root.val("name"),
		typ:  root.val("type"),
		kind: root.val("kind"),
		byID: map[string]*elem{},
		file: file,
	}
	if sd.url == "" || sd.typ == "" {
		return nil, errors.New("StructureDefinition without url or type")
	}
	snap := root.kid("snapshot")
	if snap == nil {
		return nil, fmt.Errorf("StructureDefinition %s has no snapshot", sd.url)
	}
	for i, en := range snap.all("element") {
		e, err := elemOf(sd, en)
		if err != nil {
			return nil, fmt.Errorf("%s: element %d: %w", sd.url, i+1, err)
		}
		if prev, dup := sd.byID[e.id]; dup && prev.id == e.id {
			return nil, fmt.Errorf("%s: element id %s twice", sd.url, e.id)
		}
		sd.byID[e.id] = e
		sd.alias(e)
		if sd.root == nil {
			if strings.Contains(e.id, ".") {
				return nil, fmt.Errorf("%s: first element %s is not the root", sd.url, e.id)
			}
			sd.root = e
			continue
		}
		cut := strings.LastIndexByte(e.id, '.')
		if cut < 0 {
			return nil, fmt.Errorf("%s: second root element %s", sd.url, e.id)
		}
		parent, ok := sd.byID[e.id[:cut]]
		if !ok {
			return nil, fmt.Errorf("%s: element %s comes before its parent", sd.url, e.id)
		}
		seg := e.id[cut+1:]
		if base, slice, ok := strings.Cut(seg, ":"); ok {
			// A slice of the element the id names without the slice name;
			// when there is none, the "slice" is a choice renamed to one of
			// its types (Patient.deceasedDateTime:deceasedDateTime), an
			// element in its own right.
			if b, ok := sd.byID[e.id[:cut+1]+base]; ok && !strings.Contains(slice, "/") {
				b.slices = append(b.slices, e)
				continue
			}
		}
		parent.children = append(parent.children, e)
	}
	if sd.root == nil {
		return nil, fmt.Errorf("%s: empty snapshot", sd.url)
	}
	return sd, nil
}

// alias also files a choice kept under one type's name by the other form
// of its id: some published snapshots give such an element the id
// Observation.valueQuantity:valueQuantity and its children ids under
// Observation.value[x]:valueQuantity, or the other way round.
func (sd *structure) alias(e *elem) {
	cut := strings.LastIndexByte(e.id, '.')
	base, slice, ok := strings.Cut(e.id[cut+1:], ":")
	if !ok || len(e.types) != 1 {
		return
	}
	suffix := typeSuffix(e.types[0].code)
	var other string
	switch {
	case strings.HasSuffix(base, "[x]") && slice == strings.TrimSuffix(base, "[x]")+suffix:
		other = slice + ":" + slice
	case base == slice && strings.HasSuffix(slice, suffix) && len(slice) > len(suffix):
		other = strings.TrimSuffix(slice, suffix) + "[x]:" + slice
	default:
		return
	}
	other = e.id[:cut+1] + other
	if _, taken := sd.byID[other]; !taken {
		sd.byID[other] = e
	}
}

func elemOf(sd *structure, en *node) (*elem, error) {
	e := &elem{sd: sd, id: en.id, path: en.val("path"), sliceName: en.val("sliceName")}
	if e.path == "" {
		return nil, errors.New("no path")
	}
	if e.id == "" {
		// STU3 snapshots written before element ids: the path, with the
		// slice name, identifies the element.
		e.id = e.path
		if e.sliceName != "" {
			e.id += ":" + e.sliceName
		}
	}
	e.name = e.path[strings.LastIndexByte(e.path, '.')+1:]
	var err error
	if e.min, err = strconv.Atoi(orDefault(en.val("min"), "0")); err != nil {
		return nil, fmt.Errorf("%s: min: %w", e.id, err)
	}
	if e.max, err = parseMax(orDefault(en.val("max"), "*")); err != nil {
		return nil, fmt.Errorf("%s: max: %w", e.id, err)
	}
	baseMax := e.max
	if b := en.kid("base"); b != nil && b.val("max") != "" {
		if baseMax, err = parseMax(b.val("max")); err != nil {
			return nil, fmt.Errorf("%s: base.max: %w", e.id, err)
		}
	}
	e.list = baseMax != 1 && baseMax != 0
	for _, t := range en.all("type") {
		tr := typeRef{code: t.val("code")}
		for _, p := range t.all("profile") {
			tr.profiles = append(tr.profiles, p.value)
		}
		for _, p := range t.all("targetProfile") {
			tr.targetProfiles = append(tr.targetProfiles, p.value)
		}
		if tr.code == "Reference" && len(tr.targetProfiles) == 0 {
			// Some published snapshots name a reference's target in
			// type.profile, as STU3 before 3.0.1 did.
			tr.targetProfiles, tr.profiles = tr.profiles, nil
		}
		e.types = append(e.types, tr)
	}
	e.contentRef = strings.TrimPrefix(en.val("contentReference"), "#")
	for _, k := range en.kids {
		switch {
		case strings.HasPrefix(k.name, "fixed"):
			e.fixed = &constant{kind: strings.TrimPrefix(k.name, "fixed"), value: constantValue(k)}
		case strings.HasPrefix(k.name, "pattern"):
			e.pattern = &constant{kind: strings.TrimPrefix(k.name, "pattern"), value: constantValue(k)}
		}
	}
	if b := en.kid("binding"); b != nil {
		vs := b.val("valueSetUri")
		if r := b.kid("valueSetReference"); r != nil {
			vs = r.val("reference")
		}
		vs, _, _ = strings.Cut(vs, "|")
		e.binding = &binding{strength: b.val("strength"), valueSet: vs}
	}
	if sl := en.kid("slicing"); sl != nil {
		e.slicing = &slicing{ordered: sl.val("ordered") == "true", rules: sl.val("rules")}
		for _, d := range sl.all("discriminator") {
			e.slicing.discriminators = append(e.slicing.discriminators, discriminator{kind: d.val("type"), path: d.val("path")})
		}
	}
	return e, nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func parseMax(v string) (int, error) {
	if v == "*" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a count nor *", v)
	}
	return n, nil
}

// constantValue is a fixed or pattern value in the shape of its JSON form:
// booleans and numbers typed as JSON would type them, other primitives as
// strings, complex values as trees.
func constantValue(n *node) any {
	kind := n.name[strings.IndexFunc(n.name, isUpper):]
	if len(n.kids) > 0 || !n.hasValue {
		return n.tree()
	}
	switch kind {
	case "Boolean":
		return n.value == "true"
	case "Integer", "UnsignedInt", "PositiveInt", "Decimal":
		return json.Number(n.value)
	}
	return n.value
}

func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }

func valueSetOf(root *node) *valueSet {
	vs := &valueSet{url: root.val("url")}
	compose := root.kid("compose")
	read := func(n *node) include {
		in := include{system: n.val("system")}
		for _, c := range n.all("concept") {
			in.concepts = append(in.concepts, c.val("code"))
		}
		in.filtered = n.kid("filter") != nil
		for _, v := range n.all("valueSet") {
			u, _, _ := strings.Cut(v.value, "|")
			in.valueSets = append(in.valueSets, u)
		}
		return in
	}
	for _, n := range compose.all("include") {
		vs.includes = append(vs.includes, read(n))
	}
	for _, n := range compose.all("exclude") {
		vs.excludes = append(vs.excludes, read(n))
	}
	return vs
}
