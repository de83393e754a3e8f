package fhir

import (
	"errors"
	"strings"
)

// The narrative div is XHTML markup in both forms: a JSON string holding the
// markup, an XML element in the XHTML namespace. The codec keeps the markup
// as it is where it can and checks it is what FHIR allows to be there: one
// div, XHTML elements only, no DOCTYPE, processing instruction or entity.

var errDivRoot = errors.New("the narrative must be one <div> element in the XHTML namespace")

// checkXHTML checks a div given as a JSON string before it is written into
// XML, and returns it without surrounding white space (which the XML form
// would not keep). base is the depth of the div's parent in the document.
func checkXHTML(str string, base int) (string, error) {
	str = strings.Trim(str, " \t\r\n")
	if !strings.HasPrefix(str, "<div") {
		return "", errDivRoot
	}
	s := newScanner(str)
	if err := s.checkChars(); err != nil {
		return "", notWellFormed(err)
	}
	if err := s.next(); err != nil {
		return "", notWellFormed(err)
	}
	if s.kind != tokStart || s.space != xhtmlNS || s.local != "div" {
		return "", errDivRoot
	}
	if _, err := readXHTML(s, base, nil); err != nil {
		return "", notWellFormed(err)
	}
	if s.pos != len(str) {
		return "", errDivRoot
	}
	return str, nil
}

func notWellFormed(err error) error {
	if e, ok := err.(*Error); ok {
		return errors.New("the narrative is not well-formed XHTML: " + strings.TrimPrefix(e.Reason, "malformed XML: "))
	}
	return err
}

// readXHTML consumes an XHTML element whose start tag is the scanner's
// current token, checking every element and attribute; with out set, it
// writes the element again (namespace on the root, no prefixes). It says
// whether any tag was written with a prefix. base is added to the
// scanner's depth to bound the nesting in the whole document.
func readXHTML(s *scanner, base int, out *[]byte) (prefixed bool, err error) {
	if err := checkXHTMLStart(s); err != nil {
		return false, err
	}
	stop := s.depth() - 1
	prefixed = s.qname != s.local
	var b []byte
	if out != nil {
		b = appendXHTMLStart(*out, s, true)
		defer func() { *out = b }()
	}
	justOpened := true
	for {
		if err := s.next(); err != nil {
			return prefixed, err
		}
		switch s.kind {
		case tokStart:
			if base+s.depth() > maxDepth {
				return prefixed, errors.New("the narrative is nested too deep")
			}
			if err := checkXHTMLStart(s); err != nil {
				return prefixed, err
			}
			prefixed = prefixed || s.qname != s.local
			if out != nil {
				b = appendXHTMLStart(b, s, false)
			}
			justOpened = true
		case tokEnd:
			if out != nil {
				if justOpened {
					b = append(b[:len(b)-1], "/>"...)
				} else {
					b = append(b, "</"...)
					b = append(b, s.local...)
					b = append(b, '>')
				}
			}
			justOpened = false
			if s.depth() == stop {
				return prefixed, nil
			}
		case tokText:
			if out != nil {
				b = appendText(b, s.text)
			}
			justOpened = false
		case tokComment:
			if out != nil {
				b = append(b, "<!--"...)
				b = append(b, s.text...)
				b = append(b, "-->"...)
			}
			justOpened = false
		}
	}
}

func checkXHTMLStart(s *scanner) error {
	if s.space != xhtmlNS {
		return errors.New("the narrative has element <" + s.local + "> outside the XHTML namespace")
	}
	for _, a := range s.attrs {
		if !a.nsDecl && a.space != "" && a.space != xmlNS {
			return errors.New("the narrative has attribute " + a.local + " outside the XHTML namespace")
		}
	}
	return nil
}

func appendXHTMLStart(b []byte, s *scanner, root bool) []byte {
	b = append(b, '<')
	b = append(b, s.local...)
	if root {
		b = append(b, ` xmlns="`+xhtmlNS+`"`...)
	}
	for _, a := range s.attrs {
		if a.nsDecl {
			continue
		}
		b = append(b, ' ')
		if a.space == xmlNS {
			b = append(b, "xml:"...)
		}
		b = append(b, a.local...)
		b = append(b, `="`...)
		b, _ = appendAttr(b, a.value) // the value came from a checked document
		b = append(b, '"')
	}
	return append(b, '>')
}

// appendText escapes element content.
func appendText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#13;"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}
