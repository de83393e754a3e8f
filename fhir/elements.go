package fhir

// Type is one STU3 resource or complex datatype of the codec's table
// (stu3_gen.go). It is for code that reads FHIR JSON into Go values itself,
// such as the SSP's JWT rules, and must refuse an element STU3 does not
// define exactly as the codec does, without a second list of names to drift
// from the standard.
type Type struct{ def *typeDef }

// TypeOf finds a resource of the codec or a complex datatype (Identifier,
// HumanName) by its STU3 name; false for any other name.
func TypeOf(name string) (Type, bool) {
	if id, ok := resourceType(name); ok {
		return Type{&stu3Types[id]}, true
	}
	for i := range stu3Types {
		if stu3Types[i].kind == kindComplex && stu3Types[i].name == name {
			return Type{&stu3Types[i]}, true
		}
	}
	return Type{}, false
}

// Name is the type's STU3 name.
func (t Type) Name() string {
	if t.def == nil {
		return ""
	}
	return t.def.name
}

// Defines reports whether the type has an element written as the JSON
// member name (valueString for a choice value[x]). A resource's elements
// include those of DomainResource (id, meta, text, contained, extension,
// ...). resourceType and a primitive's "_" member are JSON syntax, not
// elements, so they are not defined.
func (t Type) Defines(name string) bool {
	if t.def == nil {
		return false
	}
	_, _, ok := lookup(t.def, name)
	return ok
}
