package fhir

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanner is the codec's XML reader: well-formed XML 1.0 with namespaces,
// without a DTD. It exists because encoding/xml allocates for every token
// (names, attribute slices, boxed tokens), which made reading a 200 KB
// Bundle cost some 40,000 allocations; this one hands out substrings of the
// input and reuses its buffers.
//
// What it refuses: a DOCTYPE (so no entity can be declared: no external
// entities, no entity expansion), any entity but the five predefined ones,
// processing instructions other than the XML declaration, an encoding other
// than UTF-8, characters XML 1.0 does not allow, undeclared namespace
// prefixes, repeated attributes, mismatched tags, nesting beyond maxDepth.
type scanner struct {
	src string
	pos int

	// The current token.
	kind    tokKind
	off     int    // where it starts in src
	space   string // element: namespace URI
	local   string // element: local name
	qname   string // element: name as written
	attrs   []xattr
	text    string // text, CDATA or comment contents (decoded)
	pending bool   // an empty-element tag: its end comes next

	stack   []openElem
	ns      []nsBinding
	scratch []byte
	rootEnd bool
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokStart
	tokEnd
	tokText
	tokComment
)

// xattr is an attribute; namespace declarations are kept (nsDecl) so that
// callers can pass over them.
type xattr struct {
	space, local, qname, value string
	nsDecl                     bool
}

type openElem struct {
	qname  string
	nsMark int
}

type nsBinding struct{ prefix, uri string }

func newScanner(src string) *scanner {
	return &scanner{src: src, attrs: make([]xattr, 0, 8), stack: make([]openElem, 0, 32), ns: make([]nsBinding, 0, 8)}
}

func (s *scanner) syntax(reason string) error {
	line := 1 + strings.Count(s.src[:min(s.pos, len(s.src))], "\n")
	return &Error{Path: "line " + strconv.Itoa(line), Reason: "malformed XML: " + reason, Syntax: true}
}

// checkChars checks the whole input once: valid UTF-8 and XML 1.0
// characters only, so that the scanner itself need not.
func (s *scanner) checkChars() error {
	src := s.src
	for i := 0; i < len(src); {
		c := src[i]
		if c < 0x80 {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				s.pos = i
				return s.syntax("character " + strconv.QuoteRune(rune(c)) + " is not allowed in XML")
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			s.pos = i
			return s.syntax("invalid UTF-8")
		}
		if r == 0xFFFE || r == 0xFFFF {
			s.pos = i
			return s.syntax("character " + strconv.QuoteRune(r) + " is not allowed in XML")
		}
		i += size
	}
	return nil
}

// prolog reads the optional XML declaration.
func (s *scanner) prolog() error {
	if !strings.HasPrefix(s.src, "<?xml") || len(s.src) < 6 || !isXMLSpace(s.src[5]) {
		return nil
	}
	end := strings.Index(s.src, "?>")
	if end < 0 {
		return s.syntax("unterminated XML declaration")
	}
	decl := s.src[5:end]
	s.pos = 5
	seen := 0
	for {
		decl = strings.TrimLeft(decl, " \t\r\n")
		if decl == "" {
			break
		}
		eq := strings.IndexByte(decl, '=')
		if eq < 0 {
			return s.syntax("malformed XML declaration")
		}
		name := strings.TrimRight(decl[:eq], " \t\r\n")
		rest := strings.TrimLeft(decl[eq+1:], " \t\r\n")
		if rest == "" || rest[0] != '"' && rest[0] != '\'' {
			return s.syntax("malformed XML declaration")
		}
		q := strings.IndexByte(rest[1:], rest[0])
		if q < 0 {
			return s.syntax("malformed XML declaration")
		}
		value := rest[1 : 1+q]
		decl = rest[q+2:]
		if decl != "" && !isXMLSpace(decl[0]) {
			return s.syntax("malformed XML declaration")
		}
		switch {
		case name == "version" && seen == 0:
			if !strings.HasPrefix(value, "1.") || len(value) < 3 || strings.Trim(value[2:], "0123456789") != "" {
				return s.syntax("XML version " + strconv.Quote(value) + " is not 1.x")
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(value, "UTF-8") {
				return s.syntax("encoding " + strconv.Quote(value) + " is not UTF-8")
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen < 3:
			if value != "yes" && value != "no" {
				return s.syntax("malformed XML declaration")
			}
			seen = 3
		default:
			return s.syntax("malformed XML declaration")
		}
	}
	if seen == 0 {
		return s.syntax("XML declaration without a version")
	}
	s.pos = end + 2
	return nil
}

// next reads the next token. Outside the root element it passes over white
// space and comments itself; tokEOF comes after the root element's end.
func (s *scanner) next() error {
	if s.pending {
		s.pending = false
		return s.end()
	}
	for {
		s.off = s.pos
		if s.pos >= len(s.src) {
			if len(s.stack) > 0 {
				return s.syntax("unexpected end of input inside <" + s.stack[len(s.stack)-1].qname + ">")
			}
			if !s.rootEnd {
				return &Error{Reason: "no root element", Syntax: true}
			}
			s.kind = tokEOF
			return nil
		}
		if s.src[s.pos] != '<' {
			if err := s.chardata(); err != nil {
				return err
			}
			if len(s.stack) == 0 {
				if strings.Trim(s.text, " \t\r\n") != "" {
					return &Error{Reason: "text outside the root element", Syntax: true}
				}
				continue
			}
			s.kind = tokText
			return nil
		}
		rest := s.src[s.pos:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			if err := s.comment(); err != nil {
				return err
			}
			if len(s.stack) == 0 {
				continue
			}
			s.kind = tokComment
			return nil
		case strings.HasPrefix(rest, "<![CDATA["):
			if len(s.stack) == 0 {
				return s.syntax("CDATA outside the root element")
			}
			end := strings.Index(rest[9:], "]]>")
			if end < 0 {
				return s.syntax("unterminated CDATA section")
			}
			s.text = normalizeNewlines(rest[9:9+end], &s.scratch)
			s.pos += 9 + end + 3
			s.kind = tokText
			return nil
		case strings.HasPrefix(rest, "<!DOCTYPE"), strings.HasPrefix(rest, "<!"):
			return &Error{Reason: "DOCTYPE and other declarations are not allowed", Syntax: true}
		case strings.HasPrefix(rest, "<?"):
			target := rest[2:]
			if i := strings.IndexAny(target, " \t\r\n?"); i >= 0 {
				target = target[:i]
			}
			return &Error{Reason: "processing instruction <?" + target + "?> is not allowed", Syntax: true}
		case strings.HasPrefix(rest, "</"):
			return s.endTag()
		default:
			if s.rootEnd {
				return &Error{Reason: "content after the root element", Syntax: true}
			}
			return s.startTag()
		}
	}
}

func (s *scanner) comment() error {
	body := s.src[s.pos+4:]
	end := strings.Index(body, "--")
	if end < 0 {
		return s.syntax("unterminated comment")
	}
	if end+2 >= len(body) || body[end+2] != '>' {
		s.pos += 4 + end
		return s.syntax("\"--\" inside a comment")
	}
	s.text = body[:end]
	s.pos += 4 + end + 3
	return nil
}

// chardata reads text up to the next '<', decoding references and line ends.
func (s *scanner) chardata() error {
	start := s.pos
	end := strings.IndexByte(s.src[start:], '<')
	if end < 0 {
		end = len(s.src)
	} else {
		end += start
	}
	raw := s.src[start:end]
	if strings.Contains(raw, "]]>") {
		return s.syntax("\"]]>\" in text")
	}
	s.pos = end
	if strings.IndexByte(raw, '&') < 0 {
		s.text = normalizeNewlines(raw, &s.scratch)
		return nil
	}
	b := s.scratch[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '&':
			r, n, err := s.reference(raw[i:], start+i)
			if err != nil {
				return err
			}
			b = utf8.AppendRune(b, r)
			i += n
			continue
		case '\r':
			b = append(b, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		default:
			b = append(b, c)
		}
		i++
	}
	s.scratch = b
	s.text = string(b)
	return nil
}

// normalizeNewlines turns \r\n and \r into \n (XML 1.0, 2.11).
func normalizeNewlines(raw string, scratch *[]byte) string {
	if strings.IndexByte(raw, '\r') < 0 {
		return raw
	}
	b := (*scratch)[:0]
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\r' {
			b = append(b, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			continue
		}
		b = append(b, raw[i])
	}
	*scratch = b
	return string(b)
}

// reference decodes the reference at the start of s: a predefined entity
// or a character reference.
func (s *scanner) reference(ref string, at int) (rune, int, error) {
	semi := strings.IndexByte(ref, ';')
	if semi < 0 || semi > 12 {
		s.pos = at
		return 0, 0, s.syntax("unterminated reference")
	}
	name := ref[1:semi]
	switch name {
	case "lt":
		return '<', semi + 1, nil
	case "gt":
		return '>', semi + 1, nil
	case "amp":
		return '&', semi + 1, nil
	case "apos":
		return '\'', semi + 1, nil
	case "quot":
		return '"', semi + 1, nil
	}
	if len(name) < 2 || name[0] != '#' {
		s.pos = at
		return 0, 0, s.syntax("entity &" + name + "; is not declared (a DOCTYPE would be needed, and is not allowed)")
	}
	base, digits := 10, name[1:]
	if digits[0] == 'x' {
		base, digits = 16, digits[1:]
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil || digits == "" || digits[0] == '+' || !isXMLChar(rune(n)) {
		s.pos = at
		return 0, 0, s.syntax("invalid character reference &" + name + ";")
	}
	return rune(n), semi + 1, nil
}

func isXMLChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r < 0x20:
		return false
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	case r < 0x10000:
		return false
	}
	return r <= 0x10FFFF
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// name reads an XML Name at s.pos.
func (s *scanner) name() (string, error) {
	start := s.pos
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if c < 0x80 {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' ||
				s.pos > start && (c >= '0' && c <= '9' || c == '-' || c == '.')
			if !ok {
				break
			}
			s.pos++
			continue
		}
		r, size := utf8.DecodeRuneInString(s.src[s.pos:])
		if !isNameRune(r, s.pos > start) {
			break
		}
		s.pos += size
	}
	if s.pos == start {
		return "", s.syntax("expected a name")
	}
	return s.src[start:s.pos], nil
}

// isNameRune is XML 1.0's NameStartChar (and NameChar when notFirst) above ASCII.
func isNameRune(r rune, notFirst bool) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	case notFirst && (r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040):
		return true
	}
	return false
}

// splitQName splits prefix:local, refusing names that are not QNames.
func (s *scanner) splitQName(q string) (string, string, error) {
	i := strings.IndexByte(q, ':')
	if i < 0 {
		return "", q, nil
	}
	if i == 0 || i == len(q)-1 || strings.IndexByte(q[i+1:], ':') >= 0 {
		return "", "", s.syntax("name " + strconv.Quote(q) + " is not a qualified name")
	}
	if p := q[i+1]; p >= '0' && p <= '9' || p == '-' || p == '.' {
		return "", "", s.syntax("name " + strconv.Quote(q) + " is not a qualified name")
	}
	return q[:i], q[i+1:], nil
}

func (s *scanner) skipSpace() bool {
	start := s.pos
	for s.pos < len(s.src) && isXMLSpace(s.src[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

func (s *scanner) startTag() error {
	s.pos++ // <
	qname, err := s.name()
	if err != nil {
		return err
	}
	s.attrs = s.attrs[:0]
	nsMark := len(s.ns)
	for {
		space := s.skipSpace()
		if s.pos >= len(s.src) {
			return s.syntax("unexpected end of input in <" + qname + ">")
		}
		c := s.src[s.pos]
		if c == '>' || c == '/' {
			if c == '/' {
				if s.pos+1 >= len(s.src) || s.src[s.pos+1] != '>' {
					return s.syntax("expected \"/>\" in <" + qname + ">")
				}
				s.pending = true
				s.pos++
			}
			s.pos++
			break
		}
		if !space {
			return s.syntax("expected white space before an attribute in <" + qname + ">")
		}
		an, err := s.name()
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.src) || s.src[s.pos] != '=' {
			return s.syntax("expected '=' after attribute " + an)
		}
		s.pos++
		s.skipSpace()
		value, err := s.attrValue()
		if err != nil {
			return err
		}
		for _, a := range s.attrs {
			if a.qname == an {
				return s.syntax("attribute " + an + " is repeated in <" + qname + ">")
			}
		}
		a := xattr{qname: an, value: value}
		switch {
		case an == "xmlns":
			a.nsDecl = true
			if value == xmlNS || value == "http://www.w3.org/2000/xmlns/" {
				return s.syntax("namespace " + value + " cannot be the default")
			}
			s.ns = append(s.ns, nsBinding{"", value})
		case strings.HasPrefix(an, "xmlns:"):
			a.nsDecl = true
			prefix := an[6:]
			if _, _, err := s.splitQName("p:" + prefix); err != nil || prefix == "xmlns" || value == "" ||
				(prefix == "xml") != (value == xmlNS) || value == "http://www.w3.org/2000/xmlns/" {
				return s.syntax("namespace declaration " + an + "=" + strconv.Quote(value) + " is not allowed")
			}
			s.ns = append(s.ns, nsBinding{prefix, value})
		}
		s.attrs = append(s.attrs, a)
	}
	if len(s.stack) >= maxDepth {
		err := s.syntax("")
		err.(*Error).Reason = "nested deeper than " + strconv.Itoa(maxDepth)
		return err
	}
	s.stack = append(s.stack, openElem{qname: qname, nsMark: nsMark})
	// Resolve names now that this element's declarations are in scope.
	prefix, local, err := s.splitQName(qname)
	if err != nil {
		return err
	}
	space, ok := s.lookupNS(prefix)
	if !ok {
		return s.syntax("namespace prefix " + strconv.Quote(prefix) + " is not declared")
	}
	s.kind, s.space, s.local, s.qname = tokStart, space, local, qname
	for i := range s.attrs {
		a := &s.attrs[i]
		if a.nsDecl {
			continue
		}
		p, l, err := s.splitQName(a.qname)
		if err != nil {
			return err
		}
		a.local = l
		if p != "" {
			if a.space, ok = s.lookupNS(p); !ok {
				return s.syntax("namespace prefix " + strconv.Quote(p) + " is not declared")
			}
			for _, b := range s.attrs[:i] {
				if !b.nsDecl && b.space == a.space && b.local == a.local {
					return s.syntax("attribute {" + a.space + "}" + a.local + " is repeated in <" + qname + ">")
				}
			}
		}
	}
	return nil
}

func (s *scanner) lookupNS(prefix string) (string, bool) {
	if prefix == "xml" {
		return xmlNS, true
	}
	for i := len(s.ns) - 1; i >= 0; i-- {
		if s.ns[i].prefix == prefix {
			return s.ns[i].uri, true
		}
	}
	return "", prefix == ""
}

// attrValue reads a quoted attribute value: references decoded, white space
// characters turned into spaces (attribute-value normalisation, XML 1.0 3.3.3).
func (s *scanner) attrValue() (string, error) {
	if s.pos >= len(s.src) || s.src[s.pos] != '"' && s.src[s.pos] != '\'' {
		return "", s.syntax("expected a quoted attribute value")
	}
	q := s.src[s.pos]
	start := s.pos + 1
	end := strings.IndexByte(s.src[start:], q)
	if end < 0 {
		return "", s.syntax("unterminated attribute value")
	}
	raw := s.src[start : start+end]
	s.pos = start + end + 1
	if strings.IndexByte(raw, '<') >= 0 {
		return "", s.syntax("'<' in an attribute value")
	}
	if strings.IndexAny(raw, "&\t\n\r") < 0 {
		return raw, nil
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '&':
			r, n, err := s.reference(raw[i:], start+i)
			if err != nil {
				return "", err
			}
			b = utf8.AppendRune(b, r)
			i += n
			continue
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			b = append(b, ' ')
		case '\t', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
		i++
	}
	return string(b), nil
}

func (s *scanner) endTag() error {
	s.pos += 2
	qname, err := s.name()
	if err != nil {
		return err
	}
	s.skipSpace()
	if s.pos >= len(s.src) || s.src[s.pos] != '>' {
		return s.syntax("expected '>' after </" + qname)
	}
	s.pos++
	if len(s.stack) == 0 || s.stack[len(s.stack)-1].qname != qname {
		if len(s.stack) == 0 {
			return s.syntax("</" + qname + "> closes nothing")
		}
		return s.syntax("</" + qname + "> closes <" + s.stack[len(s.stack)-1].qname + ">")
	}
	return s.end()
}

// end closes the innermost element.
func (s *scanner) end() error {
	top := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	prefix, local, _ := s.splitQName(top.qname)
	space, _ := s.lookupNS(prefix)
	s.ns = s.ns[:top.nsMark]
	s.kind, s.space, s.local, s.qname = tokEnd, space, local, top.qname
	if len(s.stack) == 0 {
		s.rootEnd = true
	}
	return nil
}

// depth is the number of open elements.
func (s *scanner) depth() int { return len(s.stack) }
