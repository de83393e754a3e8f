// Package profile checks FHIR STU3 resources in JSON against the GP Connect
// 1.2.7 profiles as published (nhsconnect/gpconnect-fhir, release/1.2.7):
// the snapshots of their StructureDefinitions, their ValueSets and
// CodeSystems, read from XML. It is test-support code, so that a test can
// prove what a provider answers is what the profiles allow, and not only
// what the provider's own types happen to write; the product does not use
// it.
//
// What it checks, element by element of the snapshot: cardinality (0..0
// included) and the JSON shape the base cardinality implies (array or
// not); fixed[x] and pattern[x] values; required bindings to the ValueSets
// in the folder (CodeSystems expanded, enumerated concepts); slicing with
// value discriminators (identifier.system, extension url, name.use, ...),
// per slice and closed/openAtEnd/ordered; extensions: every extension
// present must match a slice of its element (a GP Connect profile lists
// the extensions it allows, so one it does not list is a problem even where
// FHIR's open slicing would let it pass), and is checked against its own
// StructureDefinition, which fixes its url and its value type; meta.profile
// naming the profile; reference targets' resource types and, for contained
// resources and Bundle entries, the profiles they claim; members the
// snapshot does not define; primitive JSON types and the STU3 formats of
// date, dateTime, instant, time, id, code, oid, uuid and the integers.
// Contained resources and Bundle entries are checked against their own
// profiles.
//
// Required bindings to core FHIR ValueSets (issue-type, slotstatus, ...)
// are checked when the Set is given the STU3 core terminology
// (WithCoreTerminology; ForTestWithCore in tests).
//
// What it does not check: FHIRPath invariants (ElementDefinition.constraint,
// e.g. ele-1 beyond empty values and objects); extensible and preferred
// bindings; displays; the inside of data types the snapshot does not expand
// (Meta, Narrative; the base STU3 data types are not in the folder);
// required bindings to ValueSets that are in neither the folder nor the core
// terminology, or that need a terminology server (SNOMED CT filters).
// Unchecked lists the last kind, with the reason, for the profiles a caller
// uses.
package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Rule names the kind of rule a Problem breaks.
type Rule string

// The rules the checker applies.
const (
	RuleCardinality Rule = "cardinality" // min/max of an element or a slice
	RuleFixed       Rule = "fixed"       // fixed[x]
	RulePattern     Rule = "pattern"     // pattern[x]
	RuleBinding     Rule = "binding"     // a required binding's ValueSet
	RuleExtension   Rule = "extension"   // an extension the element does not allow, or of the wrong value type
	RuleProfile     Rule = "profile"     // meta.profile, resourceType
	RuleSlicing     Rule = "slicing"     // closed, openAtEnd and ordered slicing
	RuleType        Rule = "type"        // JSON type, primitive format, empty values
	RuleReference   Rule = "reference"   // a reference's target type or profile
	RuleElement     Rule = "element"     // a member the profile does not define
)

// Problem is one rule of a profile that a resource breaks.
type Problem struct {
	// Path is where, FHIRPath-like, from the checked resource:
	// Bundle.entry[3].resource.ofType(Schedule).serviceType[0].
	Path string
	Rule Rule
	// Profile is the URL of the StructureDefinition whose rule it is (an
	// extension's own definition for the inside of an extension).
	Profile string
	// Element is the id of the element definition in that profile, e.g.
	// Schedule.serviceType or Patient.identifier:nhsNumber.extension.
	Element string
	// Detail says what is wrong.
	Detail string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s [%s %s]", p.Path, p.Rule, p.Detail, shortName(p.Profile), p.Element)
}

// shortName is a profile URL's last segment, for messages.
func shortName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

// Checked is one resource that a check looked at: the top one, each
// contained resource and each Bundle entry, with the profile it was checked
// against ("" when neither meta.profile nor the defaults name one, as for a
// CapabilityStatement: GP Connect 1.2.7 publishes no profile for it).
type Checked struct {
	Path, ResourceType, Profile string
}

// Result is everything one check found.
type Result struct {
	Problems []Problem
	Checked  []Checked
}

// Set is a loaded folder of profiles. It is immutable after Load and safe
// for concurrent use; load it once and check any number of resources.
type Set struct {
	dir         string
	structures  map[string]*structure
	valueSets   map[string]*valueSet
	codeSystems map[string]*codeSystem
	broken      []brokenFile
	defaults    map[string]string // resourceType → profile URL
	core        string            // the core terminology file added, if any
}

func newSet(dir string) *Set {
	return &Set{
		dir:         dir,
		structures:  map[string]*structure{},
		valueSets:   map[string]*valueSet{},
		codeSystems: map[string]*codeSystem{},
		defaults:    map[string]string{},
	}
}

// The profiles a resource without meta.profile is checked against where
// its type has more than one in the 1.2.7 set.
const (
	SearchsetBundle    = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1"
	StructuredBundle   = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1"
	OperationOutcome   = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
	observationDefault = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Observation-1"
)

// index computes what the checker derives from the whole set: the default
// profile of each resource type (the only resource profile of that type in
// the set; Bundle by Bundle.type, Observation the GP Connect one), and each
// slice's discriminator values.
func (s *Set) index() {
	byType := map[string][]string{}
	for url, sd := range s.structures {
		if sd.kind == "resource" {
			byType[sd.typ] = append(byType[sd.typ], url)
		}
		indexSlices(sd.root)
	}
	for typ, urls := range byType {
		if len(urls) == 1 {
			s.defaults[typ] = urls[0]
		}
	}
	if _, ok := s.structures[observationDefault]; ok {
		s.defaults["Observation"] = observationDefault
	}
}

func indexSlices(e *elem) {
	for _, c := range e.children {
		indexSlices(c)
	}
	for _, sl := range e.slices {
		if e.slicing != nil {
			sl.discValues = make([]string, len(e.slicing.discriminators))
			for i, d := range e.slicing.discriminators {
				sl.discValues[i] = sliceValue(sl, d.path)
			}
		}
		indexSlices(sl)
	}
}

// sliceValue is the value a slice fixes at a discriminator's path: the
// fixed or pattern value of the element there, or, for an extension's url,
// the URL of the extension's profile.
func sliceValue(sl *elem, path string) string {
	e := sl
	for _, seg := range strings.Split(path, ".") {
		if seg == "$this" {
			continue
		}
		var next *elem
		for _, c := range e.children {
			if c.name == seg {
				next = c
				break
			}
		}
		if next == nil {
			e = nil
			break
		}
		e = next
	}
	if e != nil {
		for _, c := range []*constant{e.fixed, e.pattern} {
			if c != nil {
				if v, ok := primitiveString(c.value); ok {
					return v
				}
			}
		}
	}
	if path == "url" {
		for _, t := range sl.types {
			if t.code == "Extension" && len(t.profiles) > 0 {
				return t.profiles[0]
			}
		}
	}
	return ""
}

// Profiles lists the URLs of the StructureDefinitions loaded.
func (s *Set) Profiles() []string {
	out := make([]string, 0, len(s.structures))
	for url := range s.structures {
		out = append(out, url)
	}
	sort.Strings(out)
	return out
}

// DefaultProfile is the profile a resource of type resourceType without
// meta.profile is checked against ("" when the set has none): the only
// profile of that type in the set; for a Bundle of type searchset or
// collection, GP Connect's profile for it; for an Observation,
// CareConnect-GPC-Observation-1.
func (s *Set) DefaultProfile(resourceType, bundleType string) string {
	if resourceType == "Bundle" {
		switch bundleType {
		case "searchset":
			if _, ok := s.structures[SearchsetBundle]; ok {
				return SearchsetBundle
			}
		case "collection":
			if _, ok := s.structures[StructuredBundle]; ok {
				return StructuredBundle
			}
		}
	}
	return s.defaults[resourceType]
}

// Check checks one resource (JSON) against its profiles and returns the
// problems found, none when it conforms. The profiles are those its
// meta.profile names; without meta.profile (itself a problem: GP Connect
// resources name their profile), or when it names none of the set,
// DefaultProfile's. Contained resources and Bundle entries are checked
// against their own.
func (s *Set) Check(resource []byte) []Problem { return s.Validate(resource).Problems }

// Validate is Check, also saying which resources it checked against which
// profile, so that a caller can prove its checks were not vacuous.
func (s *Set) Validate(resource []byte) Result {
	d := json.NewDecoder(bytes.NewReader(resource))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return Result{Problems: []Problem{{Rule: RuleType, Detail: "not JSON: " + err.Error()}}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Result{Problems: []Problem{{Rule: RuleType, Detail: "not a JSON object"}}}
	}
	w := &walker{s: s}
	w.resource(obj, "")
	// An extension whose definition the referencing snapshot also expands
	// is checked against both: say each problem once.
	seen := map[Problem]bool{}
	kept := w.result.Problems[:0]
	for _, p := range w.result.Problems {
		if !seen[p] {
			seen[p] = true
			kept = append(kept, p)
		}
	}
	w.result.Problems = kept
	return w.result
}

// Unchecked is a rule of a profile that the checker cannot apply, and why.
type Unchecked struct {
	Rule Rule
	// Target is what the rule needs and the folder lacks: a ValueSet, an
	// extension's profile, a file.
	Target string
	Reason string
	// Elements are the element ids (profile name: element id) with the
	// rule, in the profiles asked about.
	Elements []string
}

func (u Unchecked) String() string {
	return fmt.Sprintf("%s %s: %s (%s)", u.Rule, u.Target, u.Reason, strings.Join(u.Elements, ", "))
}

// Unchecked lists the rules of the given profiles (all loaded ones when
// none are given), and of the extensions they use, that the checker skips,
// each with its reason: required bindings to ValueSets that are not in the
// folder (core HL7 ones) or that need a terminology server (SNOMED CT
// filters), extensions whose definitions are missing or unreadable, and
// discriminators it does not evaluate. Files Load could not read are listed
// too.
func (s *Set) Unchecked(profiles ...string) []Unchecked {
	if len(profiles) == 0 {
		profiles = s.Profiles()
	}
	found := map[string]*Unchecked{}
	note := func(rule Rule, target, reason, where string) {
		key := string(rule) + " " + target
		u := found[key]
		if u == nil {
			u = &Unchecked{Rule: rule, Target: target, Reason: reason}
			found[key] = u
		}
		if where != "" && !contains(u.Elements, where) {
			u.Elements = append(u.Elements, where)
		}
	}
	seen := map[string]bool{}
	var visit func(url string)
	var walk func(sd *structure, e *elem)
	walk = func(sd *structure, e *elem) {
		where := sd.name + ": " + e.id
		if b := e.binding; b != nil && b.strength == "required" && b.valueSet != "" {
			if complete, reason := s.valueSetCheckable(b.valueSet, nil); !complete {
				note(RuleBinding, b.valueSet, reason, where)
			}
		}
		for _, t := range e.types {
			for _, p := range t.profiles {
				sd, ok := s.structures[p]
				switch {
				case ok && sd.typ == t.code:
					visit(p)
				case t.code == "Extension":
					note(RuleExtension, p, s.missingReason(p), where)
				case ok:
					note(RuleType, p, "a profile of "+sd.typ+", not of the element's type "+t.code, where)
				default:
					note(RuleType, p, s.missingReason(p), where)
				}
			}
		}
		if e.slicing != nil {
			if len(e.slicing.discriminators) == 0 && len(e.slices) > 0 {
				note(RuleSlicing, e.id, "slicing without a discriminator: its slices are not told apart", where)
			}
			for _, d := range e.slicing.discriminators {
				if d.kind != "value" && d.kind != "pattern" {
					note(RuleSlicing, d.kind+":"+d.path, "discriminator type "+d.kind+" is not evaluated", where)
				}
			}
		}
		for _, c := range e.children {
			walk(sd, c)
		}
		for _, c := range e.slices {
			walk(sd, c)
		}
	}
	visit = func(url string) {
		if seen[url] {
			return
		}
		seen[url] = true
		sd, ok := s.structures[url]
		if !ok {
			note(RuleProfile, url, s.missingReason(url), "")
			return
		}
		walk(sd, sd.root)
	}
	for _, p := range profiles {
		visit(p)
	}
	for _, b := range s.broken {
		note(RuleProfile, b.file, "cannot be read: "+b.err, "")
	}
	out := make([]Unchecked, 0, len(found))
	for _, u := range found {
		sort.Strings(u.Elements)
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// missingReason says why a profile URL is not in the set: its file (named
// after the URL's last segment, as in the published folder) could not be
// read, or there is none.
func (s *Set) missingReason(url string) string {
	name := shortName(url)
	for _, b := range s.broken {
		if strings.TrimSuffix(filepath.Base(b.file), filepath.Ext(b.file)) == name {
			return "its definition " + b.file + " cannot be read: " + b.err
		}
	}
	if strings.HasPrefix(url, "http://hl7.org/fhir/StructureDefinition/") {
		return "a core FHIR STU3 definition, not published in gpconnect-fhir"
	}
	return "not in " + s.dir
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
