package profile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// walker checks one resource tree.
type walker struct {
	s      *Set
	result Result
	// scopes are the resources a reference can resolve to without leaving
	// the document: the contained resources of each resource being checked
	// ("#id") and the entries of each Bundle ("Type/id" and fullUrl),
	// innermost last.
	scopes []map[string]map[string]any
}

func (w *walker) problem(path string, rule Rule, e *elem, format string, a ...any) {
	p := Problem{Path: path, Rule: rule, Detail: fmt.Sprintf(format, a...)}
	if e != nil {
		p.Profile, p.Element = e.sd.url, e.id
	}
	w.result.Problems = append(w.result.Problems, p)
}

// resource checks a resource against the profiles it claims or its type's
// default. prefix is the path of the element holding it ("" at the top).
func (w *walker) resource(obj map[string]any, prefix string) {
	rt, _ := obj["resourceType"].(string)
	path := rt
	if prefix != "" {
		path = prefix + ".ofType(" + rt + ")"
	}
	if rt == "" {
		w.result.Problems = append(w.result.Problems, Problem{Path: prefix, Rule: RuleProfile, Detail: "no resourceType"})
		return
	}
	var claimed []string
	if meta, ok := obj["meta"].(map[string]any); ok {
		if ps, ok := meta["profile"].([]any); ok {
			for _, p := range ps {
				if u, ok := p.(string); ok {
					claimed = append(claimed, u)
				}
			}
		}
	}
	var profiles []*structure
	for _, u := range claimed {
		sd, ok := w.s.structures[u]
		switch {
		case !ok:
			w.result.Problems = append(w.result.Problems, Problem{Path: path + ".meta.profile", Rule: RuleProfile, Profile: u,
				Detail: fmt.Sprintf("names %s, which is not a profile of the set (%s)", u, w.s.missingReason(u))})
		case sd.typ != rt || sd.kind != "resource":
			w.result.Problems = append(w.result.Problems, Problem{Path: path + ".meta.profile", Rule: RuleProfile, Profile: u,
				Detail: fmt.Sprintf("names %s, a profile of %s, on a %s", u, sd.typ, rt)})
		default:
			profiles = append(profiles, sd)
		}
	}
	if len(profiles) == 0 {
		// Check against the type's default all the same, so that a wrong or
		// missing meta.profile does not hide the rest.
		bt, _ := obj["type"].(string)
		if u := w.s.DefaultProfile(rt, bt); u != "" {
			profiles = append(profiles, w.s.structures[u])
			if len(claimed) == 0 {
				w.result.Problems = append(w.result.Problems, Problem{Path: path + ".meta.profile", Rule: RuleProfile, Profile: u,
					Element: rt + ".meta", Detail: "absent: a GP Connect " + rt + " names its profile " + u})
			}
		}
	}
	if len(profiles) == 0 {
		w.result.Checked = append(w.result.Checked, Checked{Path: path, ResourceType: rt})
	}

	w.scopes = append(w.scopes, w.localResources(rt, obj))
	defer func() { w.scopes = w.scopes[:len(w.scopes)-1] }()
	for _, sd := range profiles {
		w.result.Checked = append(w.result.Checked, Checked{Path: path, ResourceType: rt, Profile: sd.url})
		w.members(obj, sd.root, sd.root.children, path, true)
	}
	if len(profiles) == 0 {
		// Nothing to check it against; its contained resources and entries
		// may still have profiles.
		for _, key := range []string{"contained", "entry"} {
			items, _ := obj[key].([]any)
			for i, it := range items {
				m, _ := it.(map[string]any)
				if key == "entry" {
					m, _ = m["resource"].(map[string]any)
				}
				if m != nil {
					p := fmt.Sprintf("%s.%s[%d]", path, key, i)
					if key == "entry" {
						p += ".resource"
					}
					w.resource(m, p)
				}
			}
		}
	}
}

// localResources indexes what references inside a resource can point at:
// its contained resources by "#id", and a Bundle's entries by fullUrl and
// "Type/id".
func (w *walker) localResources(rt string, obj map[string]any) map[string]map[string]any {
	local := map[string]map[string]any{}
	if cs, ok := obj["contained"].([]any); ok {
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				if id, ok := m["id"].(string); ok {
					local["#"+id] = m
				}
			}
		}
	}
	if rt == "Bundle" {
		es, _ := obj["entry"].([]any)
		for _, e := range es {
			em, _ := e.(map[string]any)
			r, _ := em["resource"].(map[string]any)
			if r == nil {
				continue
			}
			if fu, ok := em["fullUrl"].(string); ok {
				local[fu] = r
			}
			t, _ := r["resourceType"].(string)
			if id, ok := r["id"].(string); ok && t != "" {
				local[t+"/"+id] = r
			}
		}
	}
	return local
}

// members checks a JSON object's members against the element definitions
// defs, the children of owner: unknown members, each definition's
// cardinality and JSON shape, each value, and slicing.
func (w *walker) members(obj map[string]any, owner *elem, defs []*elem, path string, resourceRoot bool) {
	if len(obj) == 0 {
		w.problem(path, RuleType, owner, "empty object: an element has a value or children (ele-1)")
		return
	}
	// Which definition each member belongs to.
	exact := map[string]*elem{}
	var choices []*elem
	for _, d := range defs {
		switch {
		case len(d.types) > 0 && d.types[0].code == "":
			// The primitive's own value: the JSON value itself, not a member.
		case d.choice():
			choices = append(choices, d)
		default:
			exact[d.name] = d
		}
	}
	type present struct {
		key      string
		def      *elem
		typ      typeRef
		value    any // nil when only the _key companion is there
		hasValue bool
		ext      any // the _key companion of a primitive
	}
	found := map[*elem][]present{}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if resourceRoot && k == "resourceType" {
			continue
		}
		name := strings.TrimPrefix(k, "_")
		companion := name != k
		if companion {
			if _, ok := obj[name]; ok {
				continue // read with its value
			}
		}
		def, typ, ok := w.definition(exact, choices, name)
		if !ok {
			w.unknownMember(owner, defs, choices, path, k)
			continue
		}
		p := present{key: name, def: def, typ: typ}
		if companion {
			p.ext = obj[k]
		} else {
			p.value, p.hasValue = obj[k], true
			p.ext = obj["_"+k]
		}
		found[def] = append(found[def], p)
	}

	for _, d := range defs {
		if len(d.types) > 0 && d.types[0].code == "" {
			continue
		}
		ps := found[d]
		if len(ps) > 1 {
			var names []string
			for _, p := range ps {
				names = append(names, p.key)
			}
			w.problem(path+"."+d.name, RuleType, d, "one type of %s at most, not %s", d.name, strings.Join(names, " and "))
		}
		var items []any
		var exts []any
		var itemTypes []typeRef
		key := d.name
		for _, p := range ps {
			key = p.key
			vs, es := w.shape(path+"."+p.key, d, p.value, p.hasValue, p.ext)
			items = append(items, vs...)
			exts = append(exts, es...)
			for range vs {
				itemTypes = append(itemTypes, p.typ)
			}
		}
		n := len(items)
		if len(ps) > 1 && !d.list {
			n = 1 // reported above
		}
		w.cardinality(path+"."+key, d, n, "")
		itemPath := func(i int) string {
			if d.list {
				return fmt.Sprintf("%s.%s[%d]", path, key, i)
			}
			return path + "." + key
		}
		if d.slicing != nil && len(d.slices) > 0 && len(d.slicing.discriminators) > 0 {
			w.sliced(d, items, itemTypes, itemPath, path+"."+key)
		} else {
			if isExtension(d) {
				for i, it := range items {
					w.strayExtension(d, it, itemPath(i))
				}
			}
			for i, it := range items {
				w.value(it, d, itemTypes[i], itemPath(i))
			}
		}
		for i, e := range exts {
			if e != nil {
				w.primitiveExtensions(e, d, itemPath(i))
			}
		}
	}
}

// definition finds the element definition of a member name: an element of
// that name, or a choice (value[x]) with a type whose name ends the member
// name (valueCodeableConcept).
func (w *walker) definition(exact map[string]*elem, choices []*elem, name string) (*elem, typeRef, bool) {
	if d, ok := exact[name]; ok {
		return d, elemType(d), true
	}
	for _, c := range choices {
		prefix := strings.TrimSuffix(c.name, "[x]")
		if !strings.HasPrefix(name, prefix) || len(name) == len(prefix) {
			continue
		}
		suffix := name[len(prefix):]
		for _, t := range c.types {
			if typeSuffix(t.code) == suffix {
				return c, choiceType(c, t.code), true
			}
		}
		for _, sl := range c.slices {
			if sl.path[strings.LastIndexByte(sl.path, '.')+1:] == name && len(sl.types) > 0 {
				return c, choiceType(sl, sl.types[0].code), true
			}
		}
	}
	return nil, typeRef{}, false
}

// unknownMember reports a member the definitions do not have: the wrong
// type of a choice (an extension's value most often), or an element the
// profile does not define.
func (w *walker) unknownMember(owner *elem, defs []*elem, choices []*elem, path, key string) {
	name := strings.TrimPrefix(key, "_")
	for _, c := range choices {
		prefix := strings.TrimSuffix(c.name, "[x]")
		if strings.HasPrefix(name, prefix) && len(name) > len(prefix) && isUpper(rune(name[len(prefix)])) {
			var allowed []string
			for _, t := range c.types {
				allowed = append(allowed, prefix+typeSuffix(t.code))
			}
			rule := RuleType
			if owner.sd.typ == "Extension" {
				rule = RuleExtension
			}
			if c.max == 0 {
				w.problem(path+"."+key, rule, c, "%s is present, but the profile forbids %s (max 0)", key, c.name)
				return
			}
			w.problem(path+"."+key, rule, c, "%s is not a type %s allows (%s)", key, c.name, strings.Join(allowed, ", "))
			return
		}
	}
	// A type-restricted choice renamed in the snapshot (deceased[x] kept only
	// as deceasedDateTime) lists its other types nowhere: name the one kept.
	for _, d := range defs {
		st := renamedChoiceStem(d)
		if st != "" && name != d.name && strings.HasPrefix(name, st) && len(name) > len(st) && isUpper(rune(name[len(st)])) {
			rule := RuleType
			if owner.sd.typ == "Extension" {
				rule = RuleExtension
			}
			w.problem(path+"."+key, rule, d, "%s is not a type the profile allows: only %s", key, d.name)
			return
		}
	}
	w.problem(path+"."+key, RuleElement, owner, "%s is not an element of %s in %s", key, owner.id, shortName(owner.sd.url))
}

// renamedChoiceStem is, for a choice the snapshot keeps under one type's
// name (Patient.deceasedDateTime:deceasedDateTime), the choice's name
// without the type (deceased); "" for other elements.
func renamedChoiceStem(d *elem) string {
	if d.sliceName == "" || d.sliceName != d.name || len(d.types) != 1 {
		return ""
	}
	st, ok := strings.CutSuffix(d.name, typeSuffix(d.types[0].code))
	if !ok || st == "" {
		return ""
	}
	return st
}

// shape checks a member's JSON shape (an array exactly when the base
// element repeats, never empty, no nulls but where a primitive array's
// companion needs them) and returns its items and their _ companions.
func (w *walker) shape(path string, d *elem, value any, hasValue bool, ext any) (items, exts []any) {
	if !hasValue {
		value = nil
	}
	arr, isArr := value.([]any)
	extArr, extIsArr := ext.([]any)
	switch {
	case !hasValue && ext == nil:
		return nil, nil
	case !hasValue:
		// Only the companion: extensions on a primitive without a value.
		if d.list {
			if !extIsArr {
				w.problem(path, RuleType, d, "must be an array: %s repeats", d.name)
				return []any{nil}, []any{ext}
			}
			return make([]any, len(extArr)), extArr
		}
		return []any{nil}, []any{ext}
	case d.list && !isArr:
		w.problem(path, RuleType, d, "must be an array: %s repeats in the base resource", d.name)
		return []any{value}, []any{ext}
	case !d.list && isArr:
		w.problem(path, RuleType, d, "must not be an array: %s is single", d.name)
		return arr, make([]any, len(arr))
	case isArr:
		if len(arr) == 0 {
			w.problem(path, RuleType, d, "empty array: leave the member out instead")
		}
		exts = make([]any, len(arr))
		if extIsArr {
			if len(extArr) != len(arr) {
				w.problem(path, RuleType, d, "its _%s companion has %d items for %d values", d.name, len(extArr), len(arr))
			}
			copy(exts, extArr)
		}
		for i, it := range arr {
			if it == nil && (i >= len(extArr) || extArr[i] == nil) {
				w.problem(fmt.Sprintf("%s[%d]", path, i), RuleType, d, "null item")
			}
		}
		return arr, exts
	}
	if value == nil {
		w.problem(path, RuleType, d, "null: leave the member out instead")
		return nil, nil
	}
	return []any{value}, []any{ext}
}

// cardinality checks a count against an element's (or a slice's) min and
// max.
func (w *walker) cardinality(path string, d *elem, n int, slice string) {
	what := d.name
	if slice != "" {
		what = "slice " + slice
	}
	switch {
	case d.max == 0 && n > 0:
		w.problem(path, RuleCardinality, d, "%s is present (%d), but the profile forbids it (max 0)", what, n)
	case d.max > 0 && n > d.max:
		w.problem(path, RuleCardinality, d, "%s: %d present, max %d", what, n, d.max)
	case n < d.min:
		w.problem(path, RuleCardinality, d, "%s: %d present, min %d", what, n, d.min)
	}
}

// isExtension reports whether d holds extensions.
func isExtension(d *elem) bool {
	return d.name == "extension" || d.name == "modifierExtension"
}

// strayExtension reports an extension on an element whose profile lists no
// extension there.
func (w *walker) strayExtension(d *elem, item any, path string) {
	m, _ := item.(map[string]any)
	url, _ := m["url"].(string)
	w.problem(path, RuleExtension, d, "extension %s is not one the profile allows at %s (it allows none)", url, d.id)
}

// sliced matches each item to a slice by the discriminators, checks it
// against that slice, counts each slice, and applies the slicing's rules;
// items of no slice are checked against the sliced element itself.
func (w *walker) sliced(d *elem, items []any, types []typeRef, itemPath func(int) string, path string) {
	counts := make([]int, len(d.slices))
	last := -1      // the highest slice index seen so far, for ordered
	unmatched := -1 // the first item of no slice, for openAtEnd
	for i, it := range items {
		k := w.matchSlice(d, it)
		if k < 0 {
			if unmatched < 0 {
				unmatched = i
			}
			switch {
			case isExtension(d):
				m, _ := it.(map[string]any)
				url, _ := m["url"].(string)
				var allowed []string
				for _, sl := range d.slices {
					if sl.max != 0 && len(sl.discValues) > 0 {
						allowed = append(allowed, sl.discValues[0])
					}
				}
				w.problem(itemPath(i), RuleExtension, d, "extension %s is not one the profile allows at %s (allowed: %s)",
					url, d.id, strings.Join(allowed, ", "))
			case d.slicing.rules == "closed":
				w.problem(itemPath(i), RuleSlicing, d, "matches no slice of %s, and its slicing is closed", d.id)
			}
			w.value(it, d, types[i], itemPath(i))
			continue
		}
		sl := d.slices[k]
		counts[k]++
		if unmatched >= 0 && d.slicing.rules == "openAtEnd" {
			w.problem(itemPath(i), RuleSlicing, sl, "slice %s comes after an item of no slice (item %d), but the slicing is openAtEnd", sl.sliceName, unmatched)
		}
		if d.slicing.ordered && k < last {
			w.problem(itemPath(i), RuleSlicing, sl, "slice %s comes after slice %s, but the slicing is ordered", sl.sliceName, d.slices[last].sliceName)
		}
		last = max(last, k)
		t := types[i]
		if len(sl.types) == 1 {
			t = elemType(sl)
			if d.choice() {
				t = choiceType(sl, sl.types[0].code)
			}
		}
		w.value(it, sl, t, itemPath(i))
	}
	for k, sl := range d.slices {
		w.cardinality(path, sl, counts[k], sl.sliceName)
	}
}

// matchSlice returns the index of the slice whose discriminator values the
// item has, or -1.
func (w *walker) matchSlice(d *elem, item any) int {
	for k, sl := range d.slices {
		ok := true
		for i, disc := range d.slicing.discriminators {
			want := sl.discValues[i]
			if want == "" || !hasValueAt(item, disc.path, want) {
				ok = false
				break
			}
		}
		if ok {
			return k
		}
	}
	return -1
}

// hasValueAt reports whether a JSON value has want at a dotted path,
// through arrays.
func hasValueAt(v any, path, want string) bool {
	if path == "" || path == "$this" {
		s, ok := primitiveString(v)
		return ok && s == want
	}
	seg, rest, _ := strings.Cut(path, ".")
	if seg == "$this" {
		return hasValueAt(v, rest, want)
	}
	switch x := v.(type) {
	case []any:
		for _, it := range x {
			if hasValueAt(it, path, want) {
				return true
			}
		}
	case map[string]any:
		return hasValueAt(x[seg], rest, want)
	}
	return false
}

// value checks one item of an element: its JSON type and format, fixed
// and pattern values, a required binding, a reference's target, then,
// for a complex value, its members against the element's children or its
// type's profile; a resource against its own profile.
func (w *walker) value(v any, d *elem, t typeRef, path string) {
	if v == nil {
		return // a primitive with only extensions: checked by primitiveExtensions
	}
	switch {
	case t.code == "":
		return
	case t.code == "Resource" || t.code == "DomainResource":
		m, ok := v.(map[string]any)
		if !ok {
			w.problem(path, RuleType, d, "a resource must be a JSON object")
			return
		}
		w.resource(m, path)
		return
	case isPrimitive(t.code):
		w.primitive(v, d, t.code, path)
		w.constants(v, d, path)
		w.binding(v, d, t.code, path)
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.problem(path, RuleType, d, "a %s must be a JSON object", t.code)
		return
	}
	w.constants(v, d, path)
	w.binding(v, d, t.code, path)
	if t.code == "Reference" {
		w.reference(m, d, t, path)
	}
	checked := false
	if kids := w.childrenOf(d); len(kids) > 0 {
		w.members(m, d, kids, path, false)
		checked = true
	}
	for _, p := range t.profiles {
		sd, ok := w.s.structures[p]
		if !ok || sd == d.sd || sd.typ != t.code {
			continue // listed by Unchecked
		}
		w.members(m, sd.root, sd.root.children, path, false)
		checked = true
	}
	if !checked && len(m) == 0 {
		w.problem(path, RuleType, d, "empty object: an element has a value or children (ele-1)")
	}
}

// childrenOf is the element definitions of a complex element's members:
// its children in the snapshot, or those of the element its
// contentReference names (Bundle.entry.link is #Bundle.link).
func (w *walker) childrenOf(d *elem) []*elem {
	if len(d.children) > 0 {
		return d.children
	}
	if d.contentRef != "" {
		if r, ok := d.sd.byID[d.contentRef]; ok {
			return r.children
		}
	}
	return nil
}

// primitiveExtensions checks the _member companion of a primitive: an
// object whose extensions must be ones the element allows.
func (w *walker) primitiveExtensions(ext any, d *elem, path string) {
	m, ok := ext.(map[string]any)
	if !ok {
		w.problem(path, RuleType, d, "its _%s companion must be a JSON object", d.name)
		return
	}
	kids := w.childrenOf(d)
	if len(kids) == 0 {
		return // the snapshot does not expand the primitive: nothing to check inside
	}
	var defs []*elem
	for _, k := range kids {
		if len(k.types) == 0 || k.types[0].code != "" {
			defs = append(defs, k)
		}
	}
	w.members(m, d, defs, path, false)
}

// elemType is the type of a single-typed element (all its types, merged,
// when they differ only in target profiles, as Reference(A|B) does).
func elemType(d *elem) typeRef {
	if len(d.types) == 0 {
		if d.contentRef != "" {
			return typeRef{code: "BackboneElement"}
		}
		return typeRef{code: "Element"}
	}
	t := typeRef{code: d.types[0].code}
	for _, x := range d.types {
		if x.code != t.code {
			continue
		}
		t.profiles = append(t.profiles, x.profiles...)
		t.targetProfiles = append(t.targetProfiles, x.targetProfiles...)
	}
	return t
}

// choiceType is the merged type code of a choice element.
func choiceType(d *elem, code string) typeRef {
	t := typeRef{code: code}
	for _, x := range d.types {
		if x.code == code {
			t.profiles = append(t.profiles, x.profiles...)
			t.targetProfiles = append(t.targetProfiles, x.targetProfiles...)
		}
	}
	return t
}

// typeSuffix is a type code as a choice member's suffix: dateTime →
// DateTime.
func typeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return strings.ToUpper(code[:1]) + code[1:]
}

func isPrimitive(code string) bool {
	return code != "" && code[0] >= 'a' && code[0] <= 'z' && code != "xhtml"
}

// formats are the STU3 regular expressions of the primitive types (from the
// type definitions, profiles-types.json of FHIR 3.0.1; instant, which has
// none there, after its definition: a dateTime to the second with a zone).
var formats = map[string]*regexp.Regexp{
	"date":        regexp.MustCompile(`^-?[0-9]{4}(-(0[1-9]|1[0-2])(-(0[0-9]|[1-2][0-9]|3[0-1]))?)?$`),
	"dateTime":    regexp.MustCompile(`^-?[0-9]{4}(-(0[1-9]|1[0-2])(-(0[0-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`),
	"instant":     regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`),
	"time":        regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?$`),
	"id":          regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`),
	"code":        regexp.MustCompile(`^[^\s]+(\s?[^\s]+)*$`),
	"oid":         regexp.MustCompile(`^urn:oid:(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$`),
	"uuid":        regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`),
	"integer":     regexp.MustCompile(`^-?([0]|([1-9][0-9]*))$`),
	"decimal":     regexp.MustCompile(`^-?([0]|([1-9][0-9]*))(\.[0-9]+)?([eE][+-]?[0-9]+)?$`),
	"unsignedInt": regexp.MustCompile(`^([0]|([1-9][0-9]*))$`),
	"positiveInt": regexp.MustCompile(`^[1-9][0-9]*$`),
}

// primitive checks a primitive's JSON type and format.
func (w *walker) primitive(v any, d *elem, code, path string) {
	switch code {
	case "boolean":
		if _, ok := v.(bool); !ok {
			w.problem(path, RuleType, d, "a boolean must be JSON true or false, not %s", jsonText(v))
		}
		return
	case "integer", "decimal", "unsignedInt", "positiveInt":
		n, ok := v.(json.Number)
		if !ok {
			w.problem(path, RuleType, d, "a %s must be a JSON number, not %s", code, jsonText(v))
			return
		}
		if !formats[code].MatchString(n.String()) {
			w.problem(path, RuleType, d, "%s is not a %s", n, code)
		}
		if code != "decimal" {
			if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil && (i > 2147483647 || i < -2147483648) {
				w.problem(path, RuleType, d, "%s is out of the 32-bit range of %s", n, code)
			}
		}
		return
	}
	s, ok := v.(string)
	if !ok {
		w.problem(path, RuleType, d, "a %s must be a JSON string, not %s", code, jsonText(v))
		return
	}
	if s == "" {
		w.problem(path, RuleType, d, "empty %s: a primitive has a value or extensions (ele-1)", code)
		return
	}
	if re, ok := formats[code]; ok && !re.MatchString(s) {
		w.problem(path, RuleType, d, "%q is not a valid %s", s, code)
	}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// constants checks fixed[x] (exact) and pattern[x] (the pattern's members
// present) values.
func (w *walker) constants(v any, d *elem, path string) {
	if d.fixed != nil && !matches(d.fixed.value, v, true) {
		w.problem(path, RuleFixed, d, "%s, but the profile fixes %s", jsonText(v), jsonText(d.fixed.value))
	}
	if d.pattern != nil && !matches(d.pattern.value, v, false) {
		w.problem(path, RulePattern, d, "%s does not match the pattern %s", jsonText(v), jsonText(d.pattern.value))
	}
}

// matches compares a value with a fixed or pattern value from the XML (see
// node.tree): primitives by their text, objects member by member, where a
// list in the constant means each of its items must match some item of the
// value. exact also refuses members the constant does not have.
func matches(want, got any, exact bool) bool {
	if ws, ok := primitiveString(want); ok {
		gs, ok := primitiveString(got)
		return ok && gs == ws
	}
	switch w := want.(type) {
	case []any:
		gl, ok := got.([]any)
		if !ok {
			gl = []any{got}
		}
		if exact && len(gl) != len(w) {
			return false
		}
		for _, wi := range w {
			found := false
			for _, gi := range gl {
				if matches(wi, gi, exact) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	case map[string]any:
		gm, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := gm[k]
			if !ok || !matches(wv, gv, exact) {
				return false
			}
		}
		if exact {
			for k := range gm {
				if _, ok := w[k]; !ok {
					return false
				}
			}
		}
		return true
	}
	return false
}

// primitiveString is a JSON primitive's text.
func primitiveString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// binding checks a required binding: a code, a Coding or a CodeableConcept
// (one of its codings) from the ValueSet. Where the ValueSet cannot be
// enumerated here, only a code known to be outside it is a problem.
func (w *walker) binding(v any, d *elem, code, path string) {
	b := d.binding
	if b == nil || b.strength != "required" || b.valueSet == "" {
		return
	}
	if _, ok := w.s.valueSets[b.valueSet]; !ok {
		return // listed by Unchecked
	}
	switch code {
	case "code", "string", "uri":
		s, _ := v.(string)
		if s != "" && w.s.contains(b.valueSet, "", s, nil) == no {
			w.problem(path, RuleBinding, d, "%q is not a code of ValueSet %s", s, b.valueSet)
		}
	case "Coding":
		m, _ := v.(map[string]any)
		w.coding(m, d, b, path)
	case "CodeableConcept":
		m, _ := v.(map[string]any)
		cs, _ := m["coding"].([]any)
		if len(cs) == 0 {
			w.problem(path, RuleBinding, d, "no coding: the binding to ValueSet %s is required", b.valueSet)
			return
		}
		worst := no
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			sys, _ := cm["system"].(string)
			cd, _ := cm["code"].(string)
			switch w.s.contains(b.valueSet, sys, cd, nil) {
			case yes:
				return
			case unknown:
				worst = unknown
			}
		}
		if worst == no {
			var got []string
			for _, c := range cs {
				cm, _ := c.(map[string]any)
				got = append(got, fmt.Sprintf("%v|%v", cm["system"], cm["code"]))
			}
			w.problem(path+".coding", RuleBinding, d, "no coding from ValueSet %s (got %s)", b.valueSet, strings.Join(got, ", "))
		}
	}
}

func (w *walker) coding(m map[string]any, d *elem, b *binding, path string) {
	sys, _ := m["system"].(string)
	cd, _ := m["code"].(string)
	if w.s.contains(b.valueSet, sys, cd, nil) == no {
		w.problem(path, RuleBinding, d, "%s|%s is not in ValueSet %s", sys, cd, b.valueSet)
	}
}

// reference checks what a Reference points at: a resource of a type the
// element's target profiles allow and, when the target is in the same
// document (contained, or an entry of the Bundle), one that claims a
// target profile of its type.
func (w *walker) reference(m map[string]any, d *elem, t typeRef, path string) {
	if len(t.targetProfiles) == 0 {
		return
	}
	allowed := map[string][]string{} // type → target profiles of that type
	for _, tp := range t.targetProfiles {
		typ := ""
		if sd, ok := w.s.structures[tp]; ok {
			typ = sd.typ
		} else if rest, ok := strings.CutPrefix(tp, "http://hl7.org/fhir/StructureDefinition/"); ok {
			typ = rest
		}
		if typ == "" || typ == "Resource" || typ == "DomainResource" {
			return // a target the checker cannot name: anything goes
		}
		allowed[typ] = append(allowed[typ], tp)
	}
	ref, _ := m["reference"].(string)
	if ref == "" || strings.HasPrefix(ref, "urn:") {
		return
	}
	var target map[string]any
	for i := len(w.scopes) - 1; i >= 0 && target == nil; i-- {
		target = w.scopes[i][ref]
	}
	typ := ""
	switch {
	case target != nil:
		typ, _ = target["resourceType"].(string)
	case strings.HasPrefix(ref, "#"):
		w.problem(path+".reference", RuleReference, d, "%s names no contained resource", ref)
		return
	default:
		r := ref
		if i := strings.Index(r, "/_history/"); i >= 0 {
			r = r[:i]
		}
		parts := strings.Split(r, "/")
		if len(parts) < 2 {
			w.problem(path+".reference", RuleReference, d, "%q is neither Type/id, an absolute URL nor #id", ref)
			return
		}
		typ = parts[len(parts)-2]
		if target == nil {
			target = w.lookup(typ + "/" + parts[len(parts)-1])
		}
	}
	tps, ok := allowed[typ]
	if !ok {
		var names []string
		for k := range allowed {
			names = append(names, k)
		}
		sort.Strings(names)
		w.problem(path+".reference", RuleReference, d, "%s is a %s; %s may reference %s", ref, typ, d.id, strings.Join(names, ", "))
		return
	}
	if target == nil {
		return
	}
	// The target is here: it must claim one of the target profiles (a core
	// target, http://hl7.org/fhir/StructureDefinition/X, takes any).
	var claimed []string
	if meta, ok := target["meta"].(map[string]any); ok {
		ps, _ := meta["profile"].([]any)
		for _, p := range ps {
			if s, ok := p.(string); ok {
				claimed = append(claimed, s)
			}
		}
	}
	for _, tp := range tps {
		if strings.HasPrefix(tp, "http://hl7.org/fhir/StructureDefinition/") || contains(claimed, tp) {
			return
		}
	}
	w.problem(path+".reference", RuleReference, d, "%s claims %s; %s needs %s", ref, orNone(claimed), d.id, strings.Join(tps, " or "))
}

func (w *walker) lookup(key string) map[string]any {
	for i := len(w.scopes) - 1; i >= 0; i-- {
		if r, ok := w.scopes[i][key]; ok {
			return r
		}
	}
	return nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no profile"
	}
	return strings.Join(list, ", ")
}
