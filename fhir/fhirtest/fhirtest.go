// Package fhirtest checks FHIR XML in tests against the official STU3 XML
// schema (fhir-single.xsd from the npm package fhir@3.3.1) with Debian's
// xmllint, so that any package's tests can prove the XML they produce is the
// standard's and not only the codec's idea of it.
//
// The first call runs scripts/fhir-xsd, which installs xmllint and the
// schema if they are missing; a machine where that fails fails the test
// (it never skips).
package fhirtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// schema is found once per test process: the script may install packages.
var schema = sync.OnceValues(findSchema)

// ValidateXML fails the test, with xmllint's message, unless doc is valid
// against the STU3 schema.
func ValidateXML(tb testing.TB, doc []byte) {
	tb.Helper()
	xsd, err := schema()
	if err != nil {
		tb.Fatalf("fhirtest: the STU3 schema is not available: %v", err)
	}
	cmd := exec.Command("xmllint", "--noout", "--nonet", "--schema", xsd, "-")
	cmd.Stdin = bytes.NewReader(doc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(doc) > 2000 {
			tb.Errorf("fhirtest: XML is not valid STU3 (%v):\n%s\n(document of %d bytes)", err, msg, len(doc))
			return
		}
		tb.Errorf("fhirtest: XML is not valid STU3 (%v):\n%s\ndocument:\n%s", err, msg, doc)
	}
}

// findSchema runs scripts/fhir-xsd and returns the path it prints.
func findSchema() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "fhir-xsd")
	cmd := exec.Command("bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", errors.New(script + ": " + err.Error() + "\n" + stderr.String())
	}
	xsd := strings.TrimSpace(string(out))
	if _, err := os.Stat(xsd); err != nil {
		return "", errors.New(script + " printed " + xsd + ", which is not there")
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		return "", errors.New(script + " ran but xmllint is still not on PATH")
	}
	return xsd, nil
}

// repoRoot is the module root: beside this file's package when the source
// path is known, else the first directory up from the working directory
// that has go.mod.
func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "scripts", "fhir-xsd")); err == nil {
			return root, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
