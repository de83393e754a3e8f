package profile

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
)

// WithCoreTerminology returns a Set that also knows the ValueSets and
// CodeSystems of a FHIR STU3 core terminology bundle (valuesets.json of
// the FHIR 3.0.1 definitions, as the npm package fhir@3.3.1 ships it under
// profiles/stu3), so that the profiles' required bindings to core ValueSets
// (issue-type, appointmentstatus, slotstatus, identifier-use, ...) are
// checked too. What the profiles folder defines keeps precedence. s itself
// is left as it is.
func (s *Set) WithCoreTerminology(file string) (*Set, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profile: core terminology: %w", err)
	}
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return nil, fmt.Errorf("profile: core terminology %s: %w", file, err)
	}
	if bundle.ResourceType != "Bundle" {
		return nil, fmt.Errorf("profile: core terminology %s is a %q, not a Bundle", file, bundle.ResourceType)
	}
	out := *s
	out.valueSets = maps.Clone(s.valueSets)
	out.codeSystems = maps.Clone(s.codeSystems)
	out.core = file
	added := 0
	for i, e := range bundle.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
			URL          string `json:"url"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return nil, fmt.Errorf("profile: core terminology %s: entry %d: %w", file, i, err)
		}
		switch head.ResourceType {
		case "ValueSet":
			if _, ok := out.valueSets[head.URL]; ok || head.URL == "" {
				continue
			}
			vs, err := jsonValueSet(e.Resource)
			if err != nil {
				return nil, fmt.Errorf("profile: core terminology %s: ValueSet %s: %w", file, head.URL, err)
			}
			out.valueSets[head.URL] = vs
			added++
		case "CodeSystem":
			if _, ok := out.codeSystems[head.URL]; ok || head.URL == "" {
				continue
			}
			cs, err := jsonCodeSystem(e.Resource)
			if err != nil {
				return nil, fmt.Errorf("profile: core terminology %s: CodeSystem %s: %w", file, head.URL, err)
			}
			out.codeSystems[head.URL] = cs
			added++
		}
	}
	if added == 0 {
		return nil, fmt.Errorf("profile: core terminology %s holds no ValueSet or CodeSystem the folder lacks", file)
	}
	return &out, nil
}

type jsonInclude struct {
	System  string `json:"system"`
	Concept []struct {
		Code string `json:"code"`
	} `json:"concept"`
	Filter   []json.RawMessage `json:"filter"`
	ValueSet []string          `json:"valueSet"`
}

func (j jsonInclude) include() include {
	in := include{system: j.System, filtered: len(j.Filter) > 0}
	for _, c := range j.Concept {
		in.concepts = append(in.concepts, c.Code)
	}
	for _, v := range j.ValueSet {
		u, _, _ := strings.Cut(v, "|")
		in.valueSets = append(in.valueSets, u)
	}
	return in
}

func jsonValueSet(raw json.RawMessage) (*valueSet, error) {
	var v struct {
		URL     string `json:"url"`
		Compose struct {
			Include []jsonInclude `json:"include"`
			Exclude []jsonInclude `json:"exclude"`
		} `json:"compose"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	vs := &valueSet{url: v.URL}
	for _, in := range v.Compose.Include {
		vs.includes = append(vs.includes, in.include())
	}
	for _, ex := range v.Compose.Exclude {
		vs.excludes = append(vs.excludes, ex.include())
	}
	return vs, nil
}

type jsonConcept struct {
	Code    string        `json:"code"`
	Concept []jsonConcept `json:"concept"`
}

func jsonCodeSystem(raw json.RawMessage) (*codeSystem, error) {
	var c struct {
		URL     string        `json:"url"`
		Content string        `json:"content"`
		Concept []jsonConcept `json:"concept"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	cs := &codeSystem{url: c.URL, content: c.Content, codes: map[string]bool{}}
	var walk func([]jsonConcept)
	walk = func(list []jsonConcept) {
		for _, k := range list {
			cs.codes[k.Code] = true
			walk(k.Concept)
		}
	}
	walk(c.Concept)
	return cs, nil
}
