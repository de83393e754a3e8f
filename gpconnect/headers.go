package gpconnect

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// The SSP routing headers, spelt as the specification spells them.
const (
	HeaderTraceID       = "Ssp-TraceID"
	HeaderFrom          = "Ssp-From"
	HeaderTo            = "Ssp-To"
	HeaderInteractionID = "Ssp-InteractionID"
)

// interactionURNPrefix starts every Spine interaction ID, GP Connect or not.
const interactionURNPrefix = "urn:nhs:names:services:"

// SspHeaders holds the four routing headers of one request.
type SspHeaders struct {
	TraceID, From, To, InteractionID string
}

// HeaderError says which Ssp header is wrong and what to send instead.
type HeaderError struct {
	Header string
	Reason string
}

// Error returns the reason prefixed by the header, for logs.
func (e *HeaderError) Error() string {
	return fmt.Sprintf("invalid %s header: %s", e.Header, e.Reason)
}

// ParseSspHeaders checks presence and form only: Ssp-TraceID a UUID,
// Ssp-From and Ssp-To 12 digits, Ssp-InteractionID shaped like a Spine URN
// (it does not check the interaction is known). Each header must appear
// exactly once; names match case-insensitively even in a header map built
// by hand, because clients send Ssp-InteractionId and the like. The first
// problem, in the order above, is returned.
func ParseSspHeaders(h http.Header) (SspHeaders, *HeaderError) {
	var out SspHeaders
	checks := []struct {
		name  string
		dst   *string
		check func(string) string
	}{
		{HeaderTraceID, &out.TraceID, checkTraceID},
		{HeaderFrom, &out.From, checkASID("the consumer's")},
		{HeaderTo, &out.To, checkASID("the provider's")},
		{HeaderInteractionID, &out.InteractionID, checkInteractionID},
	}
	for _, c := range checks {
		vs := headerValues(h, c.name)
		switch len(vs) {
		case 0:
			return SspHeaders{}, &HeaderError{c.name, c.name + " is missing: " + missingHint(c.name)}
		case 1:
		default:
			return SspHeaders{}, &HeaderError{c.name, fmt.Sprintf("%s must appear once, got %d values %q", c.name, len(vs), vs)}
		}
		if reason := c.check(vs[0]); reason != "" {
			return SspHeaders{}, &HeaderError{c.name, reason}
		}
		*c.dst = vs[0]
	}
	return out, nil
}

// headerValues collects the values of every key equal to name ignoring
// case, in sorted key order so the result does not depend on map order.
func headerValues(h http.Header, name string) []string {
	var keys []string
	for k := range h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, h[k]...)
	}
	return vs
}

func missingHint(name string) string {
	switch name {
	case HeaderTraceID:
		return "send a new UUID for every request"
	case HeaderFrom:
		return "send the consumer system's 12-digit ASID"
	case HeaderTo:
		return "send the provider system's 12-digit ASID"
	}
	return "send the interaction URN, e.g. " + ReadMetadata
}

func checkTraceID(v string) string {
	if !isUUID(v) {
		return fmt.Sprintf("%s must be a UUID like 6ba7b810-9dad-11d1-80b4-00c04fd430c8 (36 characters, hyphens at 9, 14, 19, 24), got %q", HeaderTraceID, v)
	}
	return ""
}

func checkASID(whose string) func(string) string {
	return func(v string) string {
		if len(v) == 12 && allDigits(v) {
			return ""
		}
		name := HeaderFrom
		if whose == "the provider's" {
			name = HeaderTo
		}
		return fmt.Sprintf("%s must be %s 12-digit ASID, got %q", name, whose, v)
	}
}

func checkInteractionID(v string) string {
	rest, ok := strings.CutPrefix(v, interactionURNPrefix)
	if !ok || rest == "" {
		return fmt.Sprintf("%s must be an interaction URN starting %q, e.g. %s, got %q", HeaderInteractionID, interactionURNPrefix, ReadMetadata, v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return fmt.Sprintf("%s must not contain spaces, control or non-ASCII characters, got %q", HeaderInteractionID, v)
		}
	}
	return ""
}

// isUUID accepts the canonical 8-4-4-4-12 hexadecimal form in either case,
// not the brace, urn:uuid: or hyphenless forms uuid.Parse also accepts.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
