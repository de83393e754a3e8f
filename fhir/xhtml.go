package fhir

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// The narrative div is XHTML markup in both forms: a JSON string holding the
// markup, an XML element in the XHTML namespace. The codec keeps the markup
// as it is where it can and checks it is what FHIR allows to be there: one
// div, XHTML elements only, no DOCTYPE, processing instruction or entity.

var errDivRoot = errors.New("the narrative must be one <div> element in the XHTML namespace")

// checkXHTML checks a div given as a JSON string before it is written into
// XML as it is; depth is the div's own depth in the XML document.
func checkXHTML(s string, depth int) error {
	d := xml.NewDecoder(strings.NewReader(s))
	seen := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !seen {
				return errDivRoot
			}
			return nil
		}
		if err != nil {
			return errors.New("the narrative is not well-formed XHTML: " + strings.TrimPrefix(err.Error(), "XML syntax error on "))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if seen || t.Name.Space != xhtmlNS || t.Name.Local != "div" {
				return errDivRoot
			}
			seen = true
			if err := readXHTML(d, t, depth, nil); err != nil {
				return err
			}
		case xml.CharData:
			if !isSpace(t) {
				return errDivRoot
			}
		default:
			return errDivRoot
		}
	}
}

// readXHTML consumes the content of an XHTML element whose start tag was
// just read, checking every element and attribute; with out set, it writes
// the element again (namespace on the root, no prefixes). depth is the
// nesting depth of start.
func readXHTML(d *xml.Decoder, start xml.StartElement, depth int, out *[]byte) error {
	if err := checkXHTMLStart(start); err != nil {
		return err
	}
	var b []byte
	if out != nil {
		b = *out
		b = appendXHTMLStart(b, start, true)
		defer func() { *out = b }()
	}
	level, justOpened := 1, true
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return errors.New("the narrative is not well-formed XHTML: " + strings.TrimPrefix(err.Error(), "XML syntax error on "))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			level++
			if depth+level > maxDepth+1 {
				return errors.New("the narrative is nested too deep")
			}
			if err := checkXHTMLStart(t); err != nil {
				return err
			}
			if out != nil {
				b = appendXHTMLStart(b, t, false)
			}
			justOpened = true
		case xml.EndElement:
			level--
			if out != nil {
				if justOpened {
					b = append(b[:len(b)-1], "/>"...)
				} else {
					b = append(b, "</"...)
					b = append(b, t.Name.Local...)
					b = append(b, '>')
				}
			}
			justOpened = false
			if level == 0 {
				return nil
			}
		case xml.CharData:
			if out != nil {
				b = appendText(b, t)
			}
			justOpened = false
		case xml.Comment:
			if out != nil {
				b = append(b, "<!--"...)
				b = append(b, t...)
				b = append(b, "-->"...)
			}
			justOpened = false
		case xml.ProcInst:
			return errors.New("the narrative has a processing instruction")
		case xml.Directive:
			return errors.New("the narrative has a DOCTYPE or other declaration")
		}
	}
}

func checkXHTMLStart(t xml.StartElement) error {
	if t.Name.Space != xhtmlNS {
		return errors.New("the narrative has element <" + t.Name.Local + "> outside the XHTML namespace")
	}
	for i, a := range t.Attr {
		for _, b := range t.Attr[:i] {
			if a.Name == b.Name {
				return errors.New("the narrative has attribute " + a.Name.Local + " twice on <" + t.Name.Local + ">")
			}
		}
		switch {
		case isNSDecl(a), a.Name.Space == "", a.Name.Space == xmlNS:
		default:
			return errors.New("the narrative has attribute " + a.Name.Local + " outside the XHTML namespace")
		}
	}
	return nil
}

func appendXHTMLStart(b []byte, t xml.StartElement, root bool) []byte {
	b = append(b, '<')
	b = append(b, t.Name.Local...)
	if root {
		b = append(b, ` xmlns="`+xhtmlNS+`"`...)
	}
	for _, a := range t.Attr {
		if isNSDecl(a) {
			continue
		}
		b = append(b, ' ')
		if a.Name.Space == xmlNS {
			b = append(b, "xml:"...)
		}
		b = append(b, a.Name.Local...)
		b = append(b, `="`...)
		b, _ = appendAttr(b, a.Value) // the value came from a parsed document
		b = append(b, '"')
	}
	return append(b, '>')
}

// appendText escapes element content.
func appendText(b []byte, s []byte) []byte {
	start := 0
	for i, c := range s {
		var esc string
		switch c {
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

// rawXHTML reports whether a div's markup, as it stands in the XML input, is
// also its JSON form: it declares the XHTML namespace itself and no tag has a
// prefix, so it means the same out of its document.
func rawXHTML(start xml.StartElement, raw []byte) bool {
	declared := false
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" && a.Value == xhtmlNS {
			declared = true
		}
	}
	if !declared {
		return false
	}
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '<' {
			continue
		}
		j := i + 1
		if raw[j] == '/' {
			j++
		}
		if j < len(raw) && (raw[j] == '!' || raw[j] == '?') {
			continue
		}
		for ; j < len(raw); j++ {
			c := raw[j]
			if c == ':' {
				return false
			}
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '/' || c == '>' {
				break
			}
		}
	}
	return true
}

func isNSDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns"
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
