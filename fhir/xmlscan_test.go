package fhir

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scanAll runs the scanner over a document and lists its tokens in a form
// that encoding/xml's can be compared with.
func scanAll(doc string) ([]string, error) {
	s := newScanner(doc)
	if err := s.checkChars(); err != nil {
		return nil, err
	}
	if err := s.prolog(); err != nil {
		return nil, err
	}
	var out []string
	text := ""
	for {
		if err := s.next(); err != nil {
			return nil, err
		}
		if s.kind == tokText {
			text += s.text
			continue
		}
		if text != "" {
			out = append(out, "text "+text)
			text = ""
		}
		switch s.kind {
		case tokEOF:
			return out, nil
		case tokStart:
			out = append(out, "start {"+s.space+"}"+s.local)
			for _, a := range s.attrs {
				if !a.nsDecl {
					out = append(out, "attr {"+a.space+"}"+a.local+"="+a.value)
				}
			}
		case tokEnd:
			out = append(out, "end {"+s.space+"}"+s.local)
		}
	}
}

// stdTokens lists encoding/xml's tokens the same way, with attribute values
// normalised as XML 1.0 says (encoding/xml does not).
func stdTokens(doc string) ([]string, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	var out []string
	text := ""
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if text != "" {
				out = append(out, "text "+text)
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if t, ok := tok.(xml.CharData); ok {
			if depth > 0 {
				text += string(t)
			}
			continue
		}
		if text != "" {
			out = append(out, "text "+text)
			text = ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			out = append(out, "start {"+t.Name.Space+"}"+t.Name.Local)
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				out = append(out, "attr {"+a.Name.Space+"}"+a.Name.Local+"="+a.Value)
			}
		case xml.EndElement:
			depth--
			out = append(out, "end {"+t.Name.Space+"}"+t.Name.Local)
		}
	}
}

// normWS maps the white space characters to spaces: attribute values differ
// in that between the scanner (literal line breaks normalised, references
// kept) and encoding/xml (nothing normalised).
func normWS(s []string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(strings.Join(s, "|"))
}

func TestScanner(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<a xmlns="urn:a" b="x&#10;y&#x9;" c="p` + "\n\t" + `q"/>`, "start {urn:a}a|attr {}b=x\ny\t|attr {}c=p  q|end {urn:a}a"},
		{"<?xml version='1.0' encoding='utf-8' standalone='yes'?>\r\n<a>x\r\ny\rz &lt;&amp;&gt;&apos;&quot; &#233;<![CDATA[<b>&amp;]]></a>", "start {}a|text x\ny\nz <&>'\" é<b>&amp;|end {}a"},
		{`<p:a xmlns:p="urn:p" xml:lang="en"><p:b xmlns:p="urn:q" p:c="1"/><!-- c --></p:a>`, "start {urn:p}a|attr {" + xmlNS + "}lang=en|start {urn:q}b|attr {urn:q}c=1|end {urn:q}b|end {urn:p}a"},
	}
	for _, tc := range tests {
		got, err := scanAll(tc.in)
		if err != nil {
			t.Errorf("scan %q: %v", tc.in, err)
			continue
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("scan %q\n got %q\nwant %q", tc.in, g, tc.want)
		}
	}
	bad := map[string]string{
		`<a>`:         "unexpected end of input",
		`<a></a><b/>`: "content after the root element",
		`<?xml version="1.0" encoding="UTF-16"?><a/>`: `encoding "UTF-16" is not UTF-8`,
		`<?xml encoding="UTF-8"?><a/>`:                "malformed XML declaration",
		` <?xml version="1.0"?><a/>`:                  "processing instruction <?xml?> is not allowed",
		`<a b="1"c="2"/>`:                             "expected white space before an attribute",
		`<a b=1/>`:                                    "expected a quoted attribute value",
		`<a:b:c xmlns:a="urn:a"/>`:                    "is not a qualified name",
		`<a xmlns:p=""/>`:                             "is not allowed",
		`<a xmlns:xml="urn:x"/>`:                      "is not allowed",
		`<a>&#xD800;</a>`:                             "invalid character reference",
		`<a>&#xFFFFFFFFF;</a>`:                        "invalid character reference",
		`<1a/>`:                                       "expected a name",
		`<a><![CDATA[x</a>`:                           "unterminated CDATA section",
		`<!-- x --->` + `<a/>`:                        `"--" inside a comment`,
		"\ufeff<a/>":                                  "text outside the root element", // a BOM is for XMLToJSON to strip
	}
	for in, want := range bad {
		if _, err := scanAll(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("scan %q: error %v, want %q", in, err, want)
		}
	}
}

// FuzzScanner compares the scanner with encoding/xml: whatever the scanner
// accepts, encoding/xml must accept too (but for names with characters only
// the fifth edition of XML 1.0 allows), with the same elements, attributes
// and text. (encoding/xml accepts more: repeated attributes, DOCTYPEs, other
// encodings.)
func FuzzScanner(f *testing.F) {
	for _, dir := range []string{"xml", "golden"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b))
		}
	}
	f.Add(`<a xmlns="urn:a" b="x&#10;y"><![CDATA[]]>&#x1F600;<!---->` + "\r\n" + `</a>`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, err := scanAll(doc)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not a *fhir.Error: %v", err, err)
			}
			return
		}
		want, err := stdTokens(doc)
		if err != nil && strings.Contains(err.Error(), "invalid XML name") && strings.ContainsFunc(doc, func(r rune) bool { return r >= 0x80 }) {
			// encoding/xml keeps to the name characters of XML 1.0's first
			// editions; the scanner, like libxml2, to the fifth edition's.
			return
		}
		if err != nil {
			t.Fatalf("the scanner accepted what encoding/xml refuses (%v):\n%q", err, doc)
		}
		if !bytes.Equal([]byte(normWS(got)), []byte(normWS(want))) {
			t.Fatalf("tokens differ for %q:\nscanner      %q\nencoding/xml %q", doc, got, want)
		}
	})
}
