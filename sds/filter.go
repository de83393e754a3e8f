package sds

import (
	"errors"
	"fmt"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Tri is the three-valued result of an LDAP filter (RFC 4511 §4.5.1.7): a
// filter on an attribute the server does not know, or with a matching rule
// the attribute lacks, is Undefined, and Undefined is not a match.
type Tri int8

// The values of Tri.
const (
	False Tri = iota
	True
	Undefined
)

// FilterOp says which kind of filter item a Filter is.
type FilterOp int8

// The filter items of RFC 4511 §4.5.1.7.
const (
	OpAnd FilterOp = iota
	OpOr
	OpNot
	OpEqual
	OpSubstrings
	OpGreaterOrEqual
	OpLessOrEqual
	OpPresent
	OpApprox
	OpExtensible
)

// Filter is a parsed LDAP search filter. The FHIR API builds its searches
// as Filters too, so both forms of SDS run the same matching code.
type Filter struct {
	Op    FilterOp
	Attr  string
	Value string   // equality, ordering, approx, extensible
	Subs  []Filter // and, or, not (one)
	// Substrings: Initial and Final are empty when absent.
	Initial, Final string
	Any            []string
	// Extensible match.
	Rule    string
	DNAttrs bool
}

// Equal is the filter item (attr=value).
func Equal(attr, value string) Filter { return Filter{Op: OpEqual, Attr: attr, Value: value} }

// And is the filter (&f...).
func And(fs ...Filter) Filter { return Filter{Op: OpAnd, Subs: fs} }

// maxFilterDepth bounds nesting: a filter arrives from the network, and a
// directory of a few hundred entries needs no deeper one.
const maxFilterDepth = 64

// ParseFilter reads an RFC 4515 filter string, as gldap hands a search's
// filter over. Syntax errors name the problem; the result's String form
// parses back to the same filter.
func ParseFilter(s string) (Filter, error) {
	p, err := ldap.CompileFilter(s)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // go-ldap's message without its client-side result code
		}
		return Filter{}, fmt.Errorf("bad filter %q: %w", s, err)
	}
	return fromPacket(p, 0)
}

func fromPacket(p *ber.Packet, depth int) (Filter, error) {
	if depth > maxFilterDepth {
		return Filter{}, fmt.Errorf("filter nested deeper than %d levels", maxFilterDepth)
	}
	str := func(q *ber.Packet) string { return ber.DecodeString(q.Data.Bytes()) }
	pair := func(op FilterOp) (Filter, error) {
		if len(p.Children) != 2 {
			return Filter{}, errors.New("malformed filter item")
		}
		return Filter{Op: op, Attr: str(p.Children[0]), Value: str(p.Children[1])}, nil
	}
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		f := Filter{Op: map[ber.Tag]FilterOp{ldap.FilterAnd: OpAnd, ldap.FilterOr: OpOr, ldap.FilterNot: OpNot}[p.Tag]}
		if f.Op == OpNot && len(p.Children) != 1 {
			return Filter{}, errors.New("a not filter holds exactly one filter")
		}
		for _, c := range p.Children {
			sub, err := fromPacket(c, depth+1)
			if err != nil {
				return Filter{}, err
			}
			f.Subs = append(f.Subs, sub)
		}
		return f, nil
	case ldap.FilterEqualityMatch:
		return pair(OpEqual)
	case ldap.FilterGreaterOrEqual:
		return pair(OpGreaterOrEqual)
	case ldap.FilterLessOrEqual:
		return pair(OpLessOrEqual)
	case ldap.FilterApproxMatch:
		return pair(OpApprox)
	case ldap.FilterPresent:
		return Filter{Op: OpPresent, Attr: str(p)}, nil
	case ldap.FilterSubstrings:
		if len(p.Children) != 2 {
			return Filter{}, errors.New("malformed substrings filter")
		}
		f := Filter{Op: OpSubstrings, Attr: str(p.Children[0])}
		if len(p.Children[1].Children) == 0 {
			return Filter{}, errors.New("a substrings filter needs at least one substring")
		}
		for _, c := range p.Children[1].Children {
			switch c.Tag {
			case ldap.FilterSubstringsInitial:
				f.Initial = str(c)
			case ldap.FilterSubstringsAny:
				f.Any = append(f.Any, str(c))
			case ldap.FilterSubstringsFinal:
				f.Final = str(c)
			}
		}
		return f, nil
	case ldap.FilterExtensibleMatch:
		f := Filter{Op: OpExtensible}
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				f.Rule = str(c)
			case ldap.MatchingRuleAssertionType:
				f.Attr = str(c)
			case ldap.MatchingRuleAssertionMatchValue:
				f.Value = str(c)
			case ldap.MatchingRuleAssertionDNAttributes:
				f.DNAttrs, _ = c.Value.(bool)
			}
		}
		return f, nil
	}
	return Filter{}, fmt.Errorf("unknown filter item %d", p.Tag)
}

// String writes the filter in RFC 4515 form, values escaped; attribute
// descriptions and rules are written as parsed, since the parser reads them
// unescaped.
func (f Filter) String() string {
	var b strings.Builder
	f.write(&b)
	return b.String()
}

func (f Filter) write(b *strings.Builder) {
	esc := ldap.EscapeFilter
	b.WriteByte('(')
	switch f.Op {
	case OpAnd, OpOr, OpNot:
		b.WriteByte("&|!"[f.Op])
		for _, s := range f.Subs {
			s.write(b)
		}
	case OpEqual:
		b.WriteString(f.Attr + "=" + esc(f.Value))
	case OpGreaterOrEqual:
		b.WriteString(f.Attr + ">=" + esc(f.Value))
	case OpLessOrEqual:
		b.WriteString(f.Attr + "<=" + esc(f.Value))
	case OpApprox:
		b.WriteString(f.Attr + "~=" + esc(f.Value))
	case OpPresent:
		b.WriteString(f.Attr + "=*")
	case OpSubstrings:
		b.WriteString(f.Attr + "=" + esc(f.Initial) + "*")
		for _, a := range f.Any {
			b.WriteString(esc(a) + "*")
		}
		b.WriteString(esc(f.Final))
	case OpExtensible:
		b.WriteString(f.Attr)
		if f.DNAttrs {
			b.WriteString(":dn")
		}
		if f.Rule != "" {
			b.WriteString(":" + f.Rule)
		}
		b.WriteString(":=" + esc(f.Value))
	}
	b.WriteByte(')')
}

// Match evaluates the filter against one entry.
func (f Filter) Match(e Entry) Tri {
	switch f.Op {
	case OpAnd:
		res := True
		for _, s := range f.Subs {
			switch s.Match(e) {
			case False:
				return False
			case Undefined:
				res = Undefined
			}
		}
		return res
	case OpOr:
		res := False
		for _, s := range f.Subs {
			switch s.Match(e) {
			case True:
				return True
			case Undefined:
				res = Undefined
			}
		}
		return res
	case OpNot:
		switch f.Subs[0].Match(e) {
		case True:
			return False
		case False:
			return True
		}
		return Undefined
	case OpPresent:
		if at, ok := lookupAttribute(f.Attr); ok && len(e.Values(at.name)) > 0 {
			return True
		}
		return False
	case OpEqual, OpApprox:
		// No SDS attribute has an approximate rule; a directory then
		// falls back to equality, as OpenLDAP does.
		at, ok := lookupAttribute(f.Attr)
		if !ok || at.equality == noRule {
			return Undefined
		}
		return at.any(e.Values(at.name), func(v string) bool { return at.equal(v, f.Value) })
	case OpSubstrings:
		at, ok := lookupAttribute(f.Attr)
		if !ok || !at.substrings {
			return Undefined
		}
		return at.any(e.Values(at.name), func(v string) bool { return at.substring(v, f) })
	case OpExtensible:
		return f.matchExtensible(e)
	}
	// Ordering: no SDS attribute has an ordering rule.
	return Undefined
}

// matchExtensible supports the case rules by name or OID, on a named
// attribute and, with :dn, on the entry's naming attributes too.
func (f Filter) matchExtensible(e Entry) Tri {
	if f.Attr == "" {
		return Undefined
	}
	at, ok := lookupAttribute(f.Attr)
	if !ok {
		return Undefined
	}
	switch strings.ToLower(f.Rule) {
	case "":
	case "caseexactmatch", "2.5.13.5":
		at.equality = exactRule
	case "caseignorematch", "2.5.13.2":
		at.equality = ignoreRule
	default:
		return Undefined
	}
	if at.equality == noRule {
		return Undefined
	}
	values := e.Values(at.name)
	if f.DNAttrs {
		if dn, err := ldap.ParseDN(e.DN); err == nil {
			for _, rdn := range dn.RDNs {
				for _, a := range rdn.Attributes {
					if t, ok := lookupAttribute(a.Type); ok && t.name == at.name {
						values = append(values[:len(values):len(values)], a.Value)
					}
				}
			}
		}
	}
	return at.any(values, func(v string) bool { return at.equal(v, f.Value) })
}

// rule is an attribute's equality matching rule in the SDS schema.
type rule int8

const (
	noRule rule = iota
	exactRule
	ignoreRule
)

// attributeType is one attribute of the schema: its name as the schema
// spells it, its OID and its matching rules.
type attributeType struct {
	name, oid  string
	equality   rule
	substrings bool
}

// lookupAttribute finds an attribute description (name without case, or
// OID) in the schema. The equality rules are those of the real SDS schema
// (caseExactMatch for nhsIDCode, nhsMhsSvcIA, nhsAsSvcIA, nhsMhsCPAId and
// nhsMHSEndPoint; caseIgnoreMatch for nhsMHSPartyKey, uniqueIdentifier,
// nhsAsClient, nhsMhsManufacturerOrg and nhsProductName; none for
// nhsMhsFQDN, nhsMHsSN and nhsMHsIN); none of them has a substrings or
// ordering rule, so such filters on them are Undefined, as on the Spine.
// Attribute options (;lang-en) are not supported and make it unknown.
func lookupAttribute(desc string) (attributeType, bool) {
	for _, at := range schema() {
		if strings.EqualFold(desc, at.name) || desc == at.oid {
			return at, true
		}
	}
	return attributeType{}, false
}

func schema() []attributeType {
	return []attributeType{
		{"objectClass", "2.5.4.0", ignoreRule, false},
		{"uniqueIdentifier", "0.9.2342.19200300.100.1.44", ignoreRule, false},
		{"nhsIDCode", "1.2.826.0.1285.0.1.10", exactRule, false},
		{"nhsMHSPartyKey", "1.2.826.0.1285.0.2.1.82", ignoreRule, false},
		{"nhsMhsSvcIA", "1.2.826.0.1285.0.2.1.123", exactRule, false},
		{"nhsMHsSN", "1.2.826.0.1285.0.2.1.126", noRule, false},
		{"nhsMHsIN", "1.2.826.0.1285.0.2.1.127", noRule, false},
		{"nhsMHSEndPoint", "1.2.826.0.1285.0.2.1.84", exactRule, false},
		{"nhsMhsFQDN", "1.2.826.0.1285.0.2.1.224", noRule, false},
		{"nhsMhsCPAId", "1.2.826.0.1285.0.2.1.124", exactRule, false},
		{"nhsAsClient", "1.2.826.0.1285.0.2.1.175", ignoreRule, false},
		{"nhsAsSvcIA", "1.2.826.0.1285.0.2.1.122", exactRule, false},
		{"nhsMhsManufacturerOrg", "1.2.826.0.1285.0.2.1.299", ignoreRule, false},
		{"nhsProductName", "1.2.826.0.1285.0.2.1.157", ignoreRule, false},
		{"o", "2.5.4.10", ignoreRule, true},
		{"ou", "2.5.4.11", ignoreRule, true},
	}
}

func (at attributeType) any(values []string, match func(string) bool) Tri {
	for _, v := range values {
		if match(v) {
			return True
		}
	}
	return False
}

// prep is the string preparation both case rules share (RFC 4518,
// simplified): leading and trailing spaces dropped, inner runs of spaces
// made one.
func prep(s string) string { return strings.Join(strings.Fields(s), " ") }

func (at attributeType) equal(v, assertion string) bool {
	v, assertion = prep(v), prep(assertion)
	if at.equality == exactRule {
		return v == assertion
	}
	return strings.EqualFold(v, assertion)
}

func (at attributeType) substring(v string, f Filter) bool {
	v = strings.ToLower(prep(v))
	low := func(s string) string { return strings.ToLower(prep(s)) }
	if !strings.HasPrefix(v, low(f.Initial)) {
		return false
	}
	v = v[len(low(f.Initial)):]
	for _, a := range f.Any {
		i := strings.Index(v, low(a))
		if i < 0 {
			return false
		}
		v = v[i+len(low(a)):]
	}
	return strings.HasSuffix(v, low(f.Final))
}
