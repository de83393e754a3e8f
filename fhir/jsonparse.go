package fhir

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jkind is the kind of a parsed JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}[k]
}

// jvalue is a parsed JSON value. Numbers keep their literal text, so that a
// decimal's precision (1.50) survives the trip to XML.
type jvalue struct {
	kind jkind
	s    string // string contents, number literal, or "true"/"false"
	obj  []jmember
	arr  []jvalue
}

type jmember struct {
	name string
	val  jvalue
}

// jsonParser is a strict RFC 8259 parser: one value, no trailing data, valid
// UTF-8, bounded nesting. It builds a tree because FHIR JSON members may come
// in any order while XML needs the definition order.
//
// Members and items are gathered on stacks while their container is read,
// then copied into arenas that the containers slice: a few allocations per
// document instead of one per object or array.
type jsonParser struct {
	src   string
	pos   int
	depth int

	mstack  []jmember
	vstack  []jvalue
	members []jmember
	values  []jvalue
}

func parseJSON(data []byte) (jvalue, error) {
	p := jsonParser{
		src:     string(data),
		mstack:  make([]jmember, 0, 64),
		vstack:  make([]jvalue, 0, 64),
		members: make([]jmember, 0, len(data)/24+8),
		values:  make([]jvalue, 0, len(data)/64+8),
	}
	p.ws()
	v, err := p.value()
	if err != nil {
		return jvalue{}, err
	}
	p.ws()
	if p.pos != len(p.src) {
		return jvalue{}, p.errorf("data after the JSON value")
	}
	return v, nil
}

func (p *jsonParser) errorf(reason string) error {
	return &Error{Path: "offset " + strconv.Itoa(p.pos), Reason: "malformed JSON: " + reason, Syntax: true}
}

func (p *jsonParser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (jvalue, error) {
	if p.pos >= len(p.src) {
		return jvalue{}, p.errorf("unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		return jvalue{kind: jString, s: s}, err
	case c == 't':
		return p.literal("true", jvalue{kind: jBool, s: "true"})
	case c == 'f':
		return p.literal("false", jvalue{kind: jBool, s: "false"})
	case c == 'n':
		return p.literal("null", jvalue{kind: jNull})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return jvalue{}, p.errorf("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (p *jsonParser) literal(lit string, v jvalue) (jvalue, error) {
	if len(p.src)-p.pos < len(lit) || p.src[p.pos:p.pos+len(lit)] != lit {
		return jvalue{}, p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return v, nil
}

// maxJSONDepth is twice maxDepth: an XML element level becomes at most two
// JSON levels (an array and an object), so every JSON form of an XML
// document the codec accepts is accepted too, and the other way round.
const maxJSONDepth = 2 * maxDepth

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errorf("nested deeper than " + strconv.Itoa(maxJSONDepth))
	}
	return nil
}

func (p *jsonParser) object() (jvalue, error) {
	if err := p.enter(); err != nil {
		return jvalue{}, err
	}
	p.pos++ // {
	v := jvalue{kind: jObject}
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return v, nil
	}
	base := len(p.mstack)
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return jvalue{}, p.errorf("expected a member name")
		}
		name, err := p.str()
		if err != nil {
			return jvalue{}, err
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return jvalue{}, p.errorf("expected ':'")
		}
		p.pos++
		p.ws()
		val, err := p.value()
		if err != nil {
			return jvalue{}, err
		}
		p.mstack = append(p.mstack, jmember{name: name, val: val})
		p.ws()
		if p.pos >= len(p.src) {
			return jvalue{}, p.errorf("unexpected end of input")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			lo := len(p.members)
			p.members = append(p.members, p.mstack[base:]...)
			v.obj = p.members[lo:len(p.members):len(p.members)]
			clear(p.mstack[base:])
			p.mstack = p.mstack[:base]
			return v, nil
		default:
			return jvalue{}, p.errorf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array() (jvalue, error) {
	if err := p.enter(); err != nil {
		return jvalue{}, err
	}
	p.pos++ // [
	v := jvalue{kind: jArray}
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return v, nil
	}
	base := len(p.vstack)
	for {
		p.ws()
		val, err := p.value()
		if err != nil {
			return jvalue{}, err
		}
		p.vstack = append(p.vstack, val)
		p.ws()
		if p.pos >= len(p.src) {
			return jvalue{}, p.errorf("unexpected end of input")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			lo := len(p.values)
			p.values = append(p.values, p.vstack[base:]...)
			v.arr = p.values[lo:len(p.values):len(p.values)]
			clear(p.vstack[base:])
			p.vstack = p.vstack[:base]
			return v, nil
		default:
			return jvalue{}, p.errorf("expected ',' or ']'")
		}
	}
}

// number checks the RFC 8259 number grammar and keeps the literal.
func (p *jsonParser) number() (jvalue, error) {
	start := p.pos
	s := p.src
	if s[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(s) && s[p.pos] == '0':
		p.pos++
	case p.pos < len(s) && s[p.pos] >= '1' && s[p.pos] <= '9':
		for p.pos < len(s) && s[p.pos] >= '0' && s[p.pos] <= '9' {
			p.pos++
		}
	default:
		return jvalue{}, p.errorf("invalid number")
	}
	if p.pos < len(s) && s[p.pos] == '.' {
		p.pos++
		d := p.pos
		for p.pos < len(s) && s[p.pos] >= '0' && s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == d {
			return jvalue{}, p.errorf("invalid number")
		}
	}
	if p.pos < len(s) && (s[p.pos] == 'e' || s[p.pos] == 'E') {
		p.pos++
		if p.pos < len(s) && (s[p.pos] == '+' || s[p.pos] == '-') {
			p.pos++
		}
		d := p.pos
		for p.pos < len(s) && s[p.pos] >= '0' && s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == d {
			return jvalue{}, p.errorf("invalid number")
		}
	}
	return jvalue{kind: jNumber, s: s[start:p.pos]}, nil
}

// str reads a string; without escapes it is a slice of the input (no copy).
func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	s := p.src
	for p.pos < len(s) {
		c := s[p.pos]
		switch {
		case c == '"':
			out := s[start:p.pos]
			p.pos++
			if !utf8.ValidString(out) {
				return "", p.errorf("invalid UTF-8 in a string")
			}
			return out, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", p.errorf("control character in a string")
		}
		p.pos++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) strSlow(start int) (string, error) {
	s := p.src
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, s[start:p.pos]...)
	for p.pos < len(s) {
		c := s[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return "", p.errorf("invalid UTF-8 in a string")
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(s) {
			break
		}
		e := s[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || len(s)-p.pos < 6 || s[p.pos] != '\\' || s[p.pos+1] != 'u' {
					return "", p.errorf("unpaired surrogate in a \\u escape")
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok {
					return "", p.errorf("invalid \\u escape")
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", p.errorf("unpaired surrogate in a \\u escape")
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape")
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.src)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := p.src[p.pos+i]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
