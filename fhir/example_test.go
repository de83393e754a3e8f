package fhir_test

import (
	"errors"
	"fmt"

	"sspemu/fhir"
)

func ExampleJSONToXML() {
	x, err := fhir.JSONToXML([]byte(`{"resourceType":"Slot","id":"1001","status":"free",
		"schedule":{"reference":"Schedule/1"},"start":"2024-03-06T09:00:00+00:00","end":"2024-03-06T09:10:00+00:00"}`))
	fmt.Println(string(x), err)
	// Output:
	// <Slot xmlns="http://hl7.org/fhir"><id value="1001"/><schedule><reference value="Schedule/1"/></schedule><status value="free"/><start value="2024-03-06T09:00:00+00:00"/><end value="2024-03-06T09:10:00+00:00"/></Slot> <nil>
}

func ExampleXMLToJSON() {
	j, err := fhir.XMLToJSON([]byte(`<Patient xmlns="http://hl7.org/fhir"><name><given value="Ellen"/><nickname value="Nell"/></name></Patient>`))
	fmt.Println(string(j), err, errors.Is(err, fhir.ErrInvalid))
	// Output:
	//  fhir: unknown element "nickname" at Patient.name[0].nickname true
}
