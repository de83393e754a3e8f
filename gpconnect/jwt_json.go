package gpconnect

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON reading of the JWT rules. The token arrives on every request and
// was once its most expensive part, so it is read without encoding/json:
// scanValue judges a document in one pass, as json.Valid would, and the
// other functions walk text already judged, slicing names and strings out
// of it and decoding only those with escapes. The differential fuzz targets
// hold each function to encoding/json.

// maxJSONDepth is how deep encoding/json lets arrays and objects nest:
// json.Valid refuses a document nested deeper, so scanValue does too.
const maxJSONDepth = 10000

// member is one member of a JSON object: its name, decoded, and where its
// value lies in the text read, without the space around it.
type member struct {
	name       string
	start, end int
}

// isJSONSpace reports whether c is space to JSON, which is narrower than
// Unicode's.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after s[i] that is
// not JSON space.
func skipSpace(s string, i int) int {
	for i < len(s) && isJSONSpace(s[i]) {
		i++
	}
	return i
}

// validJSON reports whether s is one JSON value with only space around it,
// as json.Valid does for text that is valid UTF-8 (callers check UTF-8
// once for the whole text: json.Valid itself lets invalid UTF-8 through in
// strings).
func validJSON(s string) bool {
	i := skipSpace(s, 0)
	end := scanValue(s, i, 0)
	return end >= 0 && skipSpace(s, end) == len(s)
}

// scanValue returns the index just past the JSON value that starts at s[i],
// or -1 when no valid value starts there; depth is how many arrays and
// objects are already open around it, for encoding/json's nesting limit.
// It keeps its own stack rather than recursing, so hostile nesting costs a
// byte per level, not a call frame.
func scanValue(s string, i, depth int) int {
	var small [64]byte
	open := small[:0] // '{' or '[' for each array or object open within the value
	for {
		// A value starts at s[i].
		if i >= len(s) {
			return -1
		}
		switch c := s[i]; c {
		case '{', '[':
			if depth+len(open) >= maxJSONDepth {
				return -1
			}
			open = append(open, c)
			if i = skipSpace(s, i+1); i < len(s) && s[i] == c+2 { // '}' and ']' follow '{' and '[' by two
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				if i = scanName(s, i); i < 0 {
					return -1
				}
			}
			continue
		case '"':
			if i = scanString(s, i); i < 0 {
				return -1
			}
		case 't':
			if !strings.HasPrefix(s[i:], "true") {
				return -1
			}
			i += 4
		case 'f':
			if !strings.HasPrefix(s[i:], "false") {
				return -1
			}
			i += 5
		case 'n':
			if !strings.HasPrefix(s[i:], "null") {
				return -1
			}
			i += 4
		default:
			if i = scanNumber(s, i); i < 0 {
				return -1
			}
		}
		// A value ended at s[i]: close what it ends, then expect the next.
		for {
			if len(open) == 0 {
				return i
			}
			if i = skipSpace(s, i); i >= len(s) {
				return -1
			}
			top := open[len(open)-1]
			if s[i] == ',' {
				i = skipSpace(s, i+1)
				if top == '{' {
					if i = scanName(s, i); i < 0 {
						return -1
					}
				}
				break
			}
			if s[i] != top+2 {
				return -1
			}
			open = open[:len(open)-1]
			i++
		}
	}
}

// scanName reads a member name and its colon at s[i], returning where the
// value starts (space skipped), or -1.
func scanName(s string, i int) int {
	if i >= len(s) || s[i] != '"' {
		return -1
	}
	if i = scanString(s, i); i < 0 {
		return -1
	}
	if i = skipSpace(s, i); i >= len(s) || s[i] != ':' {
		return -1
	}
	return skipSpace(s, i+1)
}

// scanString returns the index just past the valid JSON string that opens
// at s[i], or -1. It passes over plain text eight bytes at a time.
func scanString(s string, i int) int {
	for j := i + 1; j < len(s); {
		for j+8 <= len(s) {
			x := load64(s, j)
			if m := hasByte(x, '"') | hasByte(x, '\\') | hasLess(x, ' '); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(s) {
			break
		}
		switch c := s[j]; {
		case c == '"':
			return j + 1
		case c == '\\':
			if j+1 >= len(s) {
				return -1
			}
			switch s[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, ok := hex4(s, j+2); !ok {
					return -1
				}
				j += 6
			default:
				return -1
			}
		case c < ' ':
			return -1
		default:
			j++
		}
	}
	return -1
}

// scanNumber returns the index just past the valid JSON number at s[i], or
// -1.
func scanNumber(s string, i int) int {
	digits := func(j int) int {
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && s[j] >= '1' && s[j] <= '9':
		j = digits(j + 1)
	default:
		return -1
	}
	if j < len(s) && s[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return -1
		}
		j = k
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return -1
		}
		j = k
	}
	return j
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// stringEnd returns the index just past the string that opens at s[i] in
// text already judged valid; on other text it stops at the end, never
// past it. It passes over plain text eight bytes at a time.
func stringEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		for j+8 <= len(s) {
			x := load64(s, j)
			if m := hasByte(x, '"') | hasByte(x, '\\'); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(s) {
			break
		}
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// The word-at-a-time tests of stringEnd and scanString. Each sets the top
// bit of the bytes of x it finds; bytes above the first found may be set
// wrongly by a borrow, so only the lowest set bit is to be trusted.
const (
	ones = 0x0101010101010101
	tops = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word; the compiler makes this
// one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasByte marks the bytes of x equal to c.
func hasByte(x uint64, c byte) uint64 {
	x ^= ones * uint64(c)
	return (x - ones) &^ x & tops
}

// hasLess marks the bytes of x below c, for c at most 0x80.
func hasLess(x uint64, c byte) uint64 { return (x - ones*uint64(c)) &^ x & tops }

// valueEnd returns the index just past the value at s[i] in text already
// judged valid; on other text it gives some index up to len(s), never a
// panic.
func valueEnd(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				j = stringEnd(s, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(s)
	}
	j := i
	for j < len(s) {
		switch s[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}

// readObject reads the JSON object s into its members, appended to ms in
// document order. With check it first judges s as the token's envelope
// must be: valid UTF-8, one valid JSON value and nothing after it, an
// object; without, s must already be known valid (a value sliced from a
// judged document) and only the errors such text can have are given. A
// name appearing twice is refused either way, the first such name in
// document order named, and only once the whole text has been judged.
func readObject(s string, check bool, ms []member) ([]member, error) {
	if check && !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		if check && !validJSON(s) {
			return nil, errors.New("not valid JSON")
		}
		return nil, fmt.Errorf("a JSON %s, not an object", jsonKind(strings.TrimSpace(s)))
	}
	ms, end := readMembers(s, i, check, ms)
	if end < 0 || (check && skipSpace(s, end) != len(s)) {
		return nil, errors.New("not valid JSON")
	}
	if err := duplicateError(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// readMembers reads the members of the object that opens at s[i],
// appending them to ms, and returns the index just past it, or -1 when it
// is not valid JSON. With check it judges the object; without, the object
// must be known valid. It leaves duplicate names to its caller.
func readMembers(s string, i int, check bool, ms []member) ([]member, int) {
	if i = skipSpace(s, i+1); i < len(s) && s[i] == '}' {
		return ms, i + 1
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return ms, -1
		}
		var nameEnd int
		if check {
			nameEnd = scanString(s, i)
		} else {
			nameEnd = stringEnd(s, i)
		}
		if nameEnd < 0 {
			return ms, -1
		}
		name, ok := unquote(s[i:nameEnd])
		if !ok {
			return ms, -1
		}
		if i = skipSpace(s, nameEnd); i >= len(s) || s[i] != ':' {
			return ms, -1
		}
		if i = skipSpace(s, i+1); i >= len(s) {
			return ms, -1
		}
		var end int
		if check {
			end = scanValue(s, i, 1)
		} else {
			end = valueEnd(s, i)
		}
		if end < 0 {
			return ms, -1
		}
		ms = append(ms, member{name: name, start: i, end: end})
		if i = skipSpace(s, end); i < len(s) && s[i] == ',' {
			i = skipSpace(s, i+1)
			continue
		}
		if i < len(s) && s[i] == '}' {
			return ms, i + 1
		}
		return ms, -1
	}
}

// duplicateError refuses an object whose members ms repeat a name.
func duplicateError(ms []member) error {
	if name, dup := firstDuplicate(ms); dup {
		return fmt.Errorf("member %q appears twice", truncate(name, 40))
	}
	return nil
}

// firstDuplicate returns the first name in ms that an earlier member
// already has. Objects in a token have a handful of members, compared
// pairwise; a map takes over for a long one, so hostile input stays linear.
func firstDuplicate(ms []member) (string, bool) {
	if len(ms) > 32 {
		seen := make(map[string]struct{}, len(ms))
		for _, m := range ms {
			if _, dup := seen[m.name]; dup {
				return m.name, true
			}
			seen[m.name] = struct{}{}
		}
		return "", false
	}
	for j := 1; j < len(ms); j++ {
		for _, m := range ms[:j] {
			if m.name == ms[j].name {
				return ms[j].name, true
			}
		}
	}
	return "", false
}

// lookup returns the value of the member called name, as text of s.
func lookup(s string, ms []member, name string) (string, bool) {
	for _, m := range ms {
		if m.name == name {
			return s[m.start:m.end], true
		}
	}
	return "", false
}

// arrayItems walks the items of a JSON array already judged valid, which
// s holds from its '['.
type arrayItems struct {
	s string
	i int
}

// newArrayItems starts a walk over the array s, which opens with '['.
func newArrayItems(s string) arrayItems {
	i := skipSpace(s, 1)
	if i >= len(s) || s[i] == ']' {
		i = len(s)
	}
	return arrayItems{s: s, i: i}
}

// next returns the next item, without the space around it.
func (a *arrayItems) next() (string, bool) {
	if a.i >= len(a.s) {
		return "", false
	}
	start, end := a.i, valueEnd(a.s, a.i)
	a.skip(end)
	return a.s[start:end], true
}

// skip moves past the item that ends at a.s[end].
func (a *arrayItems) skip(end int) {
	if j := skipSpace(a.s, end); j < len(a.s) && a.s[j] == ',' {
		a.i = skipSpace(a.s, j+1)
	} else {
		a.i = len(a.s)
	}
}

// nextObject is next for an item that must be an object: it reads the
// item's members, appended to ms with positions in a.s, in the same walk
// that finds the item's end, and refuses the item as readObject would.
func (a *arrayItems) nextObject(ms []member) ([]member, bool, error) {
	if a.i >= len(a.s) {
		return nil, false, nil
	}
	if a.s[a.i] != '{' {
		it, _ := a.next()
		_, err := readObject(it, false, ms)
		return nil, true, err
	}
	ms, end := readMembers(a.s, a.i, false, ms)
	if end < 0 {
		return nil, true, errors.New("not valid JSON")
	}
	a.skip(end)
	if err := duplicateError(ms); err != nil {
		return nil, true, err
	}
	return ms, true, nil
}

// stringValue decodes v, a JSON value already judged valid, when it is a
// string.
func stringValue(v string) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	return unquote(v)
}

// unquote decodes a JSON string literal as encoding/json does for valid
// UTF-8 text. A string without escapes is returned as a slice of q, with
// no copy; false means q is not a well-formed literal.
func unquote(q string) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	body := q[1 : len(q)-1]
	k := indexBackslash(body)
	if k < 0 {
		return body, true
	}
	b := make([]byte, 0, len(body))
	b = append(b, body[:k]...)
	for i := k; i < len(body); {
		c := body[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(body) {
			return "", false
		}
		switch e := body[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(body, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// As encoding/json: a valid pair is one rune, anything
				// else one replacement character for the first half.
				r2, ok := rune(-1), false
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					r2, ok = hex4(body, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != unicode.ReplacementChar {
					r = dec
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return string(b), true
}

// indexBackslash is strings.IndexByte(s, '\\') for the short strings of a
// token, where the call costs more than looking eight bytes at a time.
func indexBackslash(s string) int {
	j := 0
	for ; j+8 <= len(s); j += 8 {
		if m := hasByte(load64(s, j), '\\'); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	for ; j < len(s); j++ {
		if s[j] == '\\' {
			return j
		}
	}
	return -1
}

// jsonKind names the JSON type of raw for messages.
func jsonKind[T ~string | ~[]byte](raw T) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
