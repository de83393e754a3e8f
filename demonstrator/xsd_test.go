package demonstrator

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// xsdPath runs scripts/fhir-xsd once per test process: it installs xmllint
// and fetches the official STU3 schema (npm fhir@3.3.1) when they are
// missing, and prints the schema's path. It is the script behind
// fhir/fhirtest.ValidateXML, which runs xmllint once per document; the
// practices' tests check dozens of answers, so they gather them and run
// xmllint once (the schema's load is most of its time).
var xsdPath = sync.OnceValues(func() (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "fhir-xsd"))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/fhir-xsd: %v\n%s", err, errOut.String())
	}
	return strings.TrimSpace(out.String()), nil
})

// xmlAnswers gathers XML documents and, when the test ends, checks them all
// against the STU3 schema with one xmllint run; a document that does not
// validate fails the test with xmllint's message and the document's name.
type xmlAnswers struct {
	t     testing.TB
	mu    sync.Mutex
	names []string
	docs  [][]byte
}

func newXMLAnswers(t testing.TB) *xmlAnswers {
	x := &xmlAnswers{t: t}
	t.Cleanup(x.validate)
	return x
}

func (x *xmlAnswers) add(name string, doc []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.names = append(x.names, name)
	x.docs = append(x.docs, bytes.Clone(doc))
}

func (x *xmlAnswers) validate() {
	t := x.t
	if len(x.docs) == 0 {
		return
	}
	xsd, err := xsdPath()
	if err != nil {
		t.Fatalf("the STU3 schema is not available: %v", err)
	}
	dir, err := os.MkdirTemp("", "demonstrator-xml-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	args := []string{"--noout", "--nonet", "--schema", xsd}
	files := map[string]string{}
	for i, doc := range x.docs {
		f := filepath.Join(dir, fmt.Sprintf("%03d.xml", i))
		if err := os.WriteFile(f, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, f)
		files[f] = x.names[i]
	}
	out, err := exec.Command("xmllint", args...).CombinedOutput()
	if err == nil {
		return
	}
	msg := string(out)
	for f, name := range files {
		msg = strings.ReplaceAll(msg, f, name)
	}
	var bad []string
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasSuffix(line, " validates") && strings.TrimSpace(line) != "" {
			bad = append(bad, line)
		}
	}
	t.Errorf("XML answers that are not valid STU3 (xmllint: %v):\n%s", err, strings.Join(bad, "\n"))
}
