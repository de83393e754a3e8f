package profile

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// node is one element of a conformance resource's XML: its local name, its
// value attribute (FHIR XML keeps primitive values there), its url
// attribute (extensions) and its id attribute (ElementDefinition), and its
// child elements. Text content (narrative XHTML) is not kept.
type node struct {
	name     string
	value    string
	hasValue bool
	url, id  string
	kids     []*node
}

// rootSkipped and elementSkipped are subtrees of conformance resources
// the checker never reads: prose, mappings, invariants and the differential
// (the snapshot holds every rule), left out so that loading does not build
// them. rootSkipped are children of the resource, elementSkipped children
// of a snapshot's ElementDefinition.
var (
	rootSkipped = map[string]bool{
		"text": true, "differential": true, "mapping": true, "contact": true,
		"description": true, "purpose": true, "copyright": true,
	}
	elementSkipped = map[string]bool{
		"definition": true, "comment": true, "requirements": true, "short": true, "alias": true,
		"meaningWhenMissing": true, "constraint": true, "mapping": true, "orderMeaning": true,
	}
)

// parseXML reads one FHIR XML document into a node tree.
func parseXML(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if (len(stack) == 1 && rootSkipped[t.Name.Local]) ||
				(len(stack) == 3 && stack[2].name == "element" && elementSkipped[t.Name.Local]) {
				if err := d.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "value":
					n.value, n.hasValue = a.Value, true
				case "url":
					n.url = a.Value
				case "id":
					n.id = a.Value
				}
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				if t.Name.Space != fhirNS {
					return nil, fmt.Errorf("root element %s is not in the FHIR namespace", t.Name.Local)
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

const fhirNS = "http://hl7.org/fhir"

// kid returns the first child named name, or nil.
func (n *node) kid(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// all returns every child named name.
func (n *node) all(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

// val is the value attribute of the first child named name ("" if none).
func (n *node) val(name string) string {
	if k := n.kid(name); k != nil {
		return k.value
	}
	return ""
}

// tree turns an XML value (a fixed or pattern value of a complex type)
// into the shape of its JSON form: objects for elements with children,
// strings for primitives, and every child element as a list, since the XML
// does not say which elements repeat; matching treats a list in a pattern
// as "each of these is present".
func (n *node) tree() any {
	if len(n.kids) == 0 {
		return n.value
	}
	m := map[string]any{}
	if n.hasValue {
		m["value"] = n.value
	}
	if n.url != "" {
		m["url"] = []any{n.url}
	}
	for _, k := range n.kids {
		l, _ := m[k.name].([]any)
		m[k.name] = append(l, k.tree())
	}
	return m
}
