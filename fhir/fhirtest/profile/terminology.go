package profile

import (
	"slices"
	"strings"
)

// membership is whether a code is in a ValueSet: yes, no, or unknown when
// the part of the ValueSet that could hold it cannot be enumerated here.
type membership int

const (
	no membership = iota
	yes
	unknown
)

// contains decides whether system|code is in the ValueSet url. system is
// "" for a code element, whose system the binding implies: then any
// included system's code counts.
func (s *Set) contains(url, system, code string, seen []string) membership {
	vs, ok := s.valueSets[url]
	if !ok || slices.Contains(seen, url) {
		return unknown
	}
	seen = append(seen, url)
	result := no
	for _, in := range vs.includes {
		switch s.includes(in, system, code, seen) {
		case yes:
			result = yes
		case unknown:
			if result == no {
				result = unknown
			}
		}
		if result == yes {
			break
		}
	}
	if result == yes {
		for _, ex := range vs.excludes {
			if s.includes(ex, system, code, seen) == yes {
				return no
			}
		}
	}
	return result
}

// includes decides whether system|code is in one compose.include.
func (s *Set) includes(in include, system, code string, seen []string) membership {
	if in.system != "" && system != "" && in.system != system {
		return no
	}
	var r membership
	switch {
	case in.system == "":
		r = yes // only value sets: their intersection decides
	case in.filtered:
		return unknown
	case in.concepts != nil:
		if !slices.Contains(in.concepts, code) {
			return no
		}
		r = yes
	default:
		cs, ok := s.codeSystems[in.system]
		if !ok || !cs.complete() {
			return unknown
		}
		if !cs.codes[code] {
			return no
		}
		r = yes
	}
	for _, u := range in.valueSets {
		switch s.contains(u, system, code, seen) {
		case no:
			return no
		case unknown:
			r = unknown
		}
	}
	if in.system == "" && len(in.valueSets) == 0 {
		return no
	}
	return r
}

// valueSetCheckable says whether every code of the ValueSet can be
// enumerated from the folder, and if not, why.
func (s *Set) valueSetCheckable(url string, seen []string) (bool, string) {
	vs, ok := s.valueSets[url]
	switch {
	case slices.Contains(seen, url):
		return true, ""
	case ok:
	case url == "http://www.rfc-editor.org/bcp/bcp13.txt":
		return false, "MIME types (BCP 13): not a ValueSet resource"
	case s.core != "":
		return false, "ValueSet in neither " + s.dir + " nor " + s.core
	case strings.HasPrefix(url, "http://hl7.org/fhir/ValueSet/"):
		return false, "a core FHIR STU3 ValueSet, not published in gpconnect-fhir"
	default:
		return false, "ValueSet not in " + s.dir
	}
	seen = append(seen, url)
	var reasons []string
	for _, in := range append(slices.Clone(vs.includes), vs.excludes...) {
		switch {
		case in.filtered:
			reasons = append(reasons, "includes "+in.system+" by filter: needs a terminology server")
		case in.system != "" && in.concepts == nil:
			if cs, ok := s.codeSystems[in.system]; !ok {
				reasons = append(reasons, "includes all of "+in.system+", whose CodeSystem is not here")
			} else if !cs.complete() {
				reasons = append(reasons, "includes all of "+in.system+", whose CodeSystem here is not complete (content "+cs.content+")")
			}
		}
		for _, u := range in.valueSets {
			if ok, why := s.valueSetCheckable(u, seen); !ok {
				reasons = append(reasons, "includes "+u+": "+why)
			}
		}
	}
	if len(reasons) == 0 {
		return true, ""
	}
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	return false, strings.Join(reasons, "; ") + " (a code outside the parts listed cannot be refused)"
}
