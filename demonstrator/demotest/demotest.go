// Package demotest builds the GP Connect requests that tests of the
// practices send, through whichever path they take (the demonstrator's
// handler, the SSP, the whole stack): one valid booking, and the helpers
// that pick its slot and location out of a slot search. It is imported by
// tests only.
package demotest

import (
	"encoding/json"
	"strings"
	"time"
)

// Resources returns the resources of kind in a searchset bundle, decoded
// as generic JSON.
func Resources(bundle map[string]any, kind string) []map[string]any {
	var out []map[string]any
	entries, _ := bundle["entry"].([]any)
	for _, e := range entries {
		if r, ok := e.(map[string]any)["resource"].(map[string]any); ok && r["resourceType"] == kind {
			out = append(out, r)
		}
	}
	return out
}

// SlotLocation is the Location reference of slot's schedule in a slot
// search bundle (searched with _include=Slot:schedule), or "" when its
// schedule names none.
func SlotLocation(bundle, slot map[string]any) string {
	for _, sc := range Resources(bundle, "Schedule") {
		if "Schedule/"+sc["id"].(string) != slot["schedule"].(map[string]any)["reference"] {
			continue
		}
		for _, a := range sc["actor"].([]any) {
			if ref := a.(map[string]any)["reference"].(string); strings.HasPrefix(ref, "Location/") {
				return ref
			}
		}
	}
	return ""
}

// Booking is a valid book appointment request (GPConnect-Appointment-1)
// for slot, patient and location references, made at created; callers
// edit the map for the variant they need.
func Booking(slot map[string]any, patient, location string, created time.Time) map[string]any {
	return map[string]any{
		"resourceType": "Appointment",
		"meta":         map[string]any{"profile": []string{"https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"}},
		"contained": []any{map[string]any{
			"resourceType": "Organization", "id": "1",
			"meta":       map[string]any{"profile": []string{"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"}},
			"identifier": []any{map[string]any{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y12345"}},
			"name":       "Example consumer",
			"telecom":    []any{map[string]any{"system": "phone", "value": "0300 303 5678"}},
		}},
		"extension": []any{map[string]any{
			"url":            "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1",
			"valueReference": map[string]any{"reference": "#1"}}},
		"status":      "booked",
		"description": "Free text description.",
		"start":       slot["start"],
		"end":         slot["end"],
		"slot":        []any{map[string]any{"reference": "Slot/" + slot["id"].(string)}},
		"created":     created.UTC().Format(time.RFC3339),
		"comment":     "Free text comment.",
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": patient}, "status": "accepted"},
			map[string]any{"actor": map[string]any{"reference": location}, "status": "accepted"},
		},
	}
}

// JSON encodes a request built here; maps of strings and slices always
// encode.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
