package fhir

//go:generate bash -c "go run ./internal/gen -xsd \"$(bash ../scripts/fhir-xsd)\" -o stu3_gen.go"

// The codec is driven by stu3Types (stu3_gen.go), generated from the STU3
// StructureDefinitions by internal/gen: typing hundreds of elements by hand
// would drift from the standard; the generator cannot.

// typeID indexes stu3Types.
type typeID uint16

// kind says how a type is written in JSON and XML.
type kind uint8

const (
	// kindPrimitive is a primitive (string, boolean, dateTime, ...): a JSON
	// value plus an optional _name object, an XML element with a value attribute.
	kindPrimitive kind = iota
	// kindComplex is a datatype (HumanName, Extension, ...).
	kindComplex
	// kindBackbone is an element with children of its own (Patient.contact).
	kindBackbone
	// kindResource is a resource: resourceType in JSON, the element name in XML.
	kindResource
	// kindResourceSlot holds any resource (contained, Bundle.entry.resource):
	// in XML it wraps the resource's own element.
	kindResourceSlot
	// kindXHTML is the narrative div: a JSON string, XHTML markup in XML.
	kindXHTML
)

// jsonType is the JSON form of a primitive's value.
type jsonType uint8

const (
	jsonString jsonType = iota
	jsonBool
	jsonInt
	jsonDecimal
)

// typeDef is one STU3 type: its elements in definition order.
type typeDef struct {
	name  string
	kind  kind
	json  jsonType
	regex string // the STU3 regex of a primitive's value, for reference
	elems []elemDef
}

// elemDef is one element of a type. A choice element (value[x]) has
// choice set and typ unused; name is then the base name ("value").
type elemDef struct {
	name   string
	typ    typeID
	choice []choiceDef
	min    int
	max    int // -1 for *
	array  bool
	attr   bool // an XML attribute (Element.id, Extension.url)
}

// choiceDef is one type of a choice element, with its full name
// (valueString).
type choiceDef struct {
	name string
	typ  typeID
}
