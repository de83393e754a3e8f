package main

import (
	"bytes"
	"os"
	"testing"

	"sspemu/fhir/fhirtest"
)

// TestGeneratedTableIsCurrent regenerates the table from the STU3
// definitions and compares it with the committed fhir/stu3_gen.go, so that a
// hand edit of the generated file, or a generator change not followed by
// go generate, fails.
func TestGeneratedTableIsCurrent(t *testing.T) {
	got, err := generate(fhirtest.SchemaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../stu3_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("fhir/stu3_gen.go is not what the generator writes: run go generate ./fhir")
	}
}
