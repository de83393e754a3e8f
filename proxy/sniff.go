package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"sspemu/audit"
)

// maxSniff bounds the copy of a provider's answer kept for its
// transaction record: an OperationOutcome is a few hundred bytes, and a
// searchset larger than this is not counted (Transaction.Entries stays
// absent) rather than held in memory whole. It also bounds what a gzip
// answer may inflate to for the sniff.
const maxSniff = 64 << 10

// answerTap stands between the engine and the consumer's writer for a
// forwarded request. For the answers the transaction record describes
// beyond their status (a provider's error, whose OperationOutcome code it
// reads, and a search's searchset, whose entries it counts) it keeps a
// copy of the first maxSniff bytes as they go by; every byte is passed on
// in the same call, unchanged and unheld, so the consumer's stream is
// neither delayed nor altered. Any other answer passes straight through.
// It lives in the request's scope, so it costs no allocation.
type answerTap struct {
	http.ResponseWriter
	sc        *scope
	decided   bool
	on        bool
	truncated bool // more than maxSniff bytes went by
	buf       []byte
}

func (t *answerTap) decide(code int) {
	if t.decided {
		return
	}
	t.decided = true
	sc := t.sc
	if sc == nil || sc.decision != "forwarded" || sc.rule == "upstream" {
		return // the SSP's own answer (502, 504): not the provider's
	}
	search := code >= 200 && code < 300 && strings.Contains(sc.hdr.InteractionID, ":rest:search:")
	if code < 400 && !search {
		return
	}
	h := t.Header()
	if enc := h.Get("Content-Encoding"); enc != "" && enc != "gzip" && enc != "identity" {
		return // no other coding is decoded for the sniff
	}
	size := 8 << 10
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		if n > maxSniff && search {
			return // too large to count: no copy at all
		}
		size = int(min(n, maxSniff))
	}
	t.on = true
	t.buf = make([]byte, 0, size)
}

func (t *answerTap) keep(p []byte) {
	room := maxSniff - len(t.buf)
	if len(p) > room {
		p, t.truncated = p[:room], true
	}
	t.buf = append(t.buf, p...)
}

func (t *answerTap) WriteHeader(code int) {
	t.decide(code)
	t.ResponseWriter.WriteHeader(code)
}

func (t *answerTap) Write(p []byte) (int, error) {
	t.decide(http.StatusOK)
	n, err := t.ResponseWriter.Write(p)
	if t.on {
		t.keep(p[:n])
	}
	return n, err
}

// ReadFrom keeps the writer's own copy path (see countingWriter.ReadFrom):
// the provider's body reaches it as it is, or through tapReader when a
// copy is kept.
func (t *answerTap) ReadFrom(r io.Reader) (int64, error) {
	t.decide(http.StatusOK)
	if t.on {
		r = &tapReader{r: r, t: t}
	}
	if rf, ok := t.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{t.ResponseWriter}, r)
}

func (t *answerTap) Flush() { http.NewResponseController(t.ResponseWriter).Flush() }

func (t *answerTap) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// tapReader copies what is read through it into the tap.
type tapReader struct {
	r io.Reader
	t *answerTap
}

func (r *tapReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.keep(p[:n])
	}
	return n, err
}

// answerFacts adds to the transaction record what the answer said beyond
// its status: the audit record's seq (the exact join), the content type
// and encoding, the Location and ETag (record version 4), and from the tap's copy the provider's OperationOutcome
// code or a searchset's entry counts. It runs after the answer is written,
// so the sniff never delays the consumer's bytes.
func answerFacts(t *audit.Transaction, sc *scope, h http.Header) {
	t.AuditSeq = sc.auditSeq
	t.RespContentType = cut(h.Get("Content-Type"))
	t.RespContentEncoding = cut(h.Get("Content-Encoding"))
	t.Location = cut(h.Get("Location"))
	t.ETag = cut(h.Get("ETag"))
	tp := &sc.tap
	if !tp.on || t.Decision != "forwarded" {
		return
	}
	f := sniffAnswer(tp.buf, tp.truncated, t.RespContentType, t.RespContentEncoding)
	if t.Status >= 400 {
		t.ProviderCode, t.ProviderIssueCode = f.code, f.issueCode
	} else if f.counted {
		n := f.entries
		t.Entries, t.EntryTypes = &n, f.types
	}
}

// sniffed is what sniffAnswer found in an answer.
type sniffed struct {
	code      string // the first issue's details coding code (OperationOutcome)
	issueCode string // the first issue's FHIR code
	// counted is true for a whole searchset Bundle; entries is then its
	// number of entries, types the count per resource type (nil when
	// none).
	counted bool
	entries int
	types   map[string]int
}

// errSniff marks an answer that is not what the sniff reads.
var errSniff = errors.New("not a FHIR OperationOutcome or searchset")

// sniffAnswer reads a provider's answer, of which body holds the first
// bytes (truncated: not all of them), as an OperationOutcome (its code) or
// a searchset Bundle (its entries, only when whole). A gzip answer is
// inflated first, to at most maxSniff bytes. It parses untrusted bytes:
// anything it cannot read gives an empty result, never a panic
// (FuzzSniffAnswer). contentType picks JSON or XML; without one the first
// byte decides.
func sniffAnswer(body []byte, truncated bool, contentType, contentEncoding string) sniffed {
	if contentEncoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return sniffed{}
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxSniff+1))
		switch {
		case len(plain) > maxSniff:
			plain, truncated = plain[:maxSniff], true
		case err != nil:
			truncated = true // a cut copy ends the stream early
		}
		body = plain
	}
	body = bytes.TrimLeft(body, " \t\r\n\ufeff")
	ct := strings.ToLower(contentType)
	var (
		f   sniffed
		err error
	)
	switch {
	case strings.Contains(ct, "xml"), !strings.Contains(ct, "json") && len(body) > 0 && body[0] == '<':
		f, err = sniffXML(body)
	default:
		f, err = sniffJSON(body)
	}
	if err != nil {
		return sniffed{}
	}
	if truncated {
		f.counted, f.entries, f.types = false, 0, nil
	}
	return f
}

// fhirJSON is the part of a FHIR JSON resource the sniff reads.
type fhirJSON struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Issue        []struct {
		Code    string `json:"code"`
		Details struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"details"`
	} `json:"issue"`
	Entry []struct {
		Resource struct {
			ResourceType string `json:"resourceType"`
		} `json:"resource"`
	} `json:"entry"`
}

// sniffJSON reads a searchset with scanSearchset, several times faster
// than decoding it (a search answer is what the sniff sees most), and
// anything else, an OperationOutcome above all, with encoding/json.
func sniffJSON(body []byte) (sniffed, error) {
	if f, ok := scanSearchset(body); ok {
		return f, nil
	}
	return decodeJSON(body)
}

// decodeJSON is sniffJSON by encoding/json; FuzzScanSearchset holds
// scanSearchset to it.
func decodeJSON(body []byte) (sniffed, error) {
	var r fhirJSON
	if err := json.Unmarshal(body, &r); err != nil {
		return sniffed{}, err
	}
	var f sniffed
	switch {
	case r.ResourceType == "OperationOutcome" && len(r.Issue) > 0:
		is := r.Issue[0]
		f.issueCode = bound(is.Code)
		for _, c := range is.Details.Coding {
			if c.Code != "" {
				f.code = bound(c.Code)
				break
			}
		}
	case r.ResourceType == "Bundle" && r.Type == "searchset":
		f.counted, f.entries = true, len(r.Entry)
		for _, e := range r.Entry {
			f.count(e.Resource.ResourceType)
		}
	default:
		return sniffed{}, errSniff
	}
	return f, nil
}

// count adds one entry of resource type rt (bounded: at most 20 types of
// at most 64 bytes each are kept, the rest counted as "other").
func (f *sniffed) count(rt string) {
	if rt == "" {
		rt = "(none)"
	}
	rt = bound(rt)
	if f.types == nil {
		f.types = map[string]int{}
	}
	if _, ok := f.types[rt]; !ok && len(f.types) >= 20 {
		rt = "other"
	}
	f.types[rt]++
}

// bound cuts a value read from a provider to 64 bytes for the record.
func bound(s string) string { return cutTo(s, 64) }

// sniffXML walks FHIR XML: the root element names the resource; an
// OperationOutcome's first issue gives its code and details coding code,
// a searchset Bundle's entry/resource children their types.
func sniffXML(body []byte) (sniffed, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var (
		f      sniffed
		path   []string
		root   string
		typ    string
		issues int
	)
	value := func(se xml.StartElement) string {
		for _, a := range se.Attr {
			if a.Name.Local == "value" {
				return a.Value
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sniffed{}, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			name := el.Name.Local
			path = append(path, name)
			if len(path) > 64 {
				return sniffed{}, errSniff
			}
			if len(path) == 1 {
				root = name
				continue
			}
			switch root {
			case "OperationOutcome":
				if len(path) == 2 && name == "issue" {
					issues++
				}
				if issues != 1 {
					continue
				}
				switch {
				case len(path) == 3 && path[1] == "issue" && name == "code":
					f.issueCode = bound(value(el))
				case len(path) == 5 && path[2] == "details" && path[3] == "coding" && name == "code" && f.code == "":
					f.code = bound(value(el))
				}
			case "Bundle":
				switch {
				case len(path) == 2 && name == "type":
					typ = value(el)
				case len(path) == 2 && name == "entry":
					f.entries++
				case len(path) == 4 && path[1] == "entry" && path[2] == "resource":
					f.count(name)
				}
			}
		case xml.EndElement:
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		}
	}
	switch {
	case root == "OperationOutcome" && issues > 0:
		f.entries, f.types = 0, nil
	case root == "Bundle" && typ == "searchset":
		f.counted = true
		f.code, f.issueCode = "", ""
	default:
		return sniffed{}, errSniff
	}
	return f, nil
}

// scanSearchset counts the entries of a FHIR JSON searchset Bundle, and
// their resource types, by scanning its bytes rather than decoding them:
// it reads only the members it needs (resourceType, type, entry, and in
// each entry resource.resourceType) and skips every other value by its
// brackets and quotes. It reports false for anything else, or anything it
// does not read as encoding/json would (a repeated entry member), and
// sniffJSON then decodes it instead (FuzzScanSearchset holds the two to
// the same counts).
func scanSearchset(b []byte) (sniffed, bool) {
	s := &jscan{b: b}
	var (
		f        sniffed
		rt, typ  string
		hasEntry bool
	)
	null, ok := s.object(func(key []byte) bool {
		switch {
		case bytes.EqualFold(key, []byte("resourceType")):
			return s.str(&rt)
		case bytes.EqualFold(key, []byte("type")):
			return s.str(&typ)
		case bytes.EqualFold(key, []byte("entry")):
			// encoding/json decodes a repeated entry member into the
			// entries the first one made: that is left to it.
			ok := !hasEntry && s.entries(&f)
			hasEntry = true
			return ok
		}
		return s.skip()
	})
	if null || !ok {
		return sniffed{}, false
	}
	s.ws()
	if s.i != len(b) || rt != "Bundle" || typ != "searchset" {
		return sniffed{}, false
	}
	f.counted = true
	return f, true
}

// entries reads the entry array, counting each entry by the resourceType
// of its resource.
func (s *jscan) entries(f *sniffed) bool {
	null, ok := s.open('[')
	if null || !ok {
		return ok
	}
	for first := true; ; first = false {
		more, ok := s.more(']', first)
		if !ok || !more {
			return ok
		}
		var rtype string
		_, ok = s.object(func(key []byte) bool {
			if !bytes.EqualFold(key, []byte("resource")) {
				return s.skip()
			}
			_, ok := s.object(func(key []byte) bool {
				if bytes.EqualFold(key, []byte("resourceType")) {
					return s.str(&rtype)
				}
				return s.skip()
			})
			return ok
		})
		if !ok {
			return false
		}
		f.entries++
		f.count(rtype)
	}
}

// object reads an object at the cursor, calling member with each member's
// name once the cursor is on its value; member reads the value and reports
// whether it could. A null stands for an object, as in encoding/json.
func (s *jscan) object(member func(key []byte) bool) (null, ok bool) {
	null, ok = s.open('{')
	if null || !ok {
		return null, ok
	}
	for first := true; ; first = false {
		more, ok := s.more('}', first)
		if !ok || !more {
			return false, ok
		}
		key, ok := s.key()
		if !ok || !member(key) {
			return false, false
		}
	}
}

// jscan is scanSearchset's cursor over JSON bytes.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// open consumes the opening bracket c, or a null (which encoding/json
// takes in place of an object or an array, leaving the target as it was).
func (s *jscan) open(c byte) (null, ok bool) {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true, true
	}
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return false, true
	}
	return false, false
}

// more reports whether another member or element follows (consuming the
// comma before it), or consumes the closing bracket.
func (s *jscan) more(closing byte, first bool) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	if s.b[s.i] == closing {
		s.i++
		return false, true
	}
	if !first {
		if s.b[s.i] != ',' {
			return false, false
		}
		s.i++
		s.ws()
	}
	return true, true
}

// key reads a member's name and its colon. A name with escapes or bytes
// outside ASCII goes through encoding/json.
func (s *jscan) key() ([]byte, bool) {
	start := s.i
	plain, ok := s.skipString()
	if !ok {
		return nil, false
	}
	k := s.b[start+1 : s.i-1]
	if !plain {
		var name string
		if json.Unmarshal(s.b[start:s.i], &name) != nil {
			return nil, false
		}
		k = []byte(name)
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false
	}
	s.i++
	return k, true
}

// str reads a string into *dst (a null leaves *dst as it was). A string
// with escapes or bytes outside ASCII goes through encoding/json, so it
// reads exactly as there (invalid UTF-8 and all).
func (s *jscan) str(dst *string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	start := s.i
	plain, ok := s.skipString()
	if !ok {
		return false
	}
	if plain {
		*dst = string(s.b[start+1 : s.i-1])
		return true
	}
	return json.Unmarshal(s.b[start:s.i], dst) == nil
}

// skipString passes over a string at the cursor, reporting whether it is
// plain (printable ASCII without escapes).
func (s *jscan) skipString() (plain, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false, false
	}
	plain = true
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\':
			plain = false
			j++
		case c == '"':
			s.i = j + 1
			return plain, true
		case c < ' ':
			return false, false
		case c >= 0x80:
			plain = false
		}
	}
	return false, false
}

// skip passes over one value of any kind: a string, an object or array by
// its brackets (strings inside them skipped whole), or a number or
// literal up to the next delimiter.
func (s *jscan) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.skipString()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.skipString(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case '}', ']', ',', ':':
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}
