package sds

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The query parameters and identifier systems of the SDS FHIR API
// (spine-directory-service request/base_handler.py).
const (
	paramOrganization  = "organization"
	paramIdentifier    = "identifier"
	paramManufacturing = "manufacturing-organization"

	SystemODS         = "https://fhir.nhs.uk/Id/ods-organization-code"
	SystemInteraction = "https://fhir.nhs.uk/Id/nhsServiceInteractionId"
	SystemPartyKey    = "https://fhir.nhs.uk/Id/nhsMhsPartyKey"
	SystemASID        = "https://fhir.nhs.uk/Id/nhsSpineASID"
	SystemMHSFQDN     = "https://fhir.nhs.uk/Id/nhsMhsFQDN"
	SystemCPAID       = "https://fhir.nhs.uk/Id/nhsMhsCPAId"
	SystemMHSID       = "https://fhir.nhs.uk/Id/nhsMHSId"
)

// param is one name=value pair of a query string, in the order sent.
type param struct{ name, value string }

// maxQuery bounds a query string; a real lookup is a few hundred bytes.
const maxQuery = 8 << 10

// parseQuery splits a raw query string into its pairs, in order, decoding
// %XX and '+' as forms do. Empty pairs are skipped and a pair without '='
// has an empty value, as Python's parse_qsl (keep_blank_values) reads them.
func parseQuery(raw string) ([]param, error) {
	if len(raw) > maxQuery {
		return nil, fmt.Errorf("query string longer than %d bytes", maxQuery)
	}
	var out []param
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q is not URL-encoded properly", k)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("the value of query parameter '%s' is not URL-encoded properly", name)
		}
		if !utf8.ValidString(name) || !utf8.ValidString(value) {
			return nil, fmt.Errorf("query parameter '%s' is not UTF-8", name)
		}
		out = append(out, param{name, value})
	}
	return out, nil
}

// Query is one SDS lookup: the values of the parameters given, empty when
// absent.
type Query struct {
	ODS, Interaction, PartyKey, Manufacturer string
}

// badRequest is a 400 with the real service's message; the service writes
// it as tornado does: "HTTP 400: Bad Request (<message>)".
type badRequest string

func (b badRequest) Error() string { return string(b) }

func invalidParam(name, system string) badRequest {
	return badRequest(fmt.Sprintf("Missing or invalid '%s' query parameter. Should be '%s=%s|value'", name, name, system))
}

func invalidIdentifier() badRequest {
	return badRequest(fmt.Sprintf("Missing or invalid '%s' query parameter. Should be one or both of: ['%s=%s|value', '%s=%s|value'",
		paramIdentifier, paramIdentifier, SystemInteraction, paramIdentifier, SystemPartyKey))
}

func invalidCombination() badRequest {
	org := paramOrganization + "=" + SystemODS + "|value"
	party := paramIdentifier + "=" + SystemPartyKey + "|value"
	service := paramIdentifier + "=" + SystemInteraction + "|value"
	return badRequest("Missing or invalid query parameters. Should one of following combinations: [" +
		"'" + org + "&" + service + "&" + party + "'" +
		"'" + org + "&" + service + "'" +
		"'" + org + "&" + party + "'" +
		"'" + service + "&" + party + "'" +
		"]")
}

// checkParams refuses a parameter the resource does not take, and a value
// that does not start with its system: the real handlers' first check,
// made per parameter name in the order names first appear.
func checkParams(ps []param, allowed ...string) error {
	var names []string
	byName := map[string][]string{}
	for _, p := range ps {
		if _, seen := byName[p.name]; !seen {
			names = append(names, p.name)
		}
		byName[p.name] = append(byName[p.name], p.value)
	}
	for _, name := range names {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return badRequest(fmt.Sprintf("Illegal query parameter '%s'", name))
		}
		for _, v := range byName[name] {
			switch name {
			case paramOrganization, paramManufacturing:
				if !strings.HasPrefix(v, SystemODS+"|") {
					return invalidParam(name, SystemODS)
				}
			case paramIdentifier:
				if !strings.HasPrefix(v, SystemInteraction+"|") && !strings.HasPrefix(v, SystemPartyKey+"|") {
					return invalidIdentifier()
				}
			}
		}
	}
	return nil
}

// value returns the last value of name whose system is system and whose
// value is not blank, as the real handlers read it.
func value(ps []param, name, system string) string {
	out := ""
	for _, p := range ps {
		if p.name != name {
			continue
		}
		v := strings.TrimSpace(p.value)
		sys, rest, ok := strings.Cut(v, "|")
		if ok && sys == system && strings.TrimSpace(rest) != "" {
			out = rest
		}
	}
	return out
}

// parseDeviceQuery reads GET /Device: organization and the interaction
// identifier required, a party key identifier and manufacturing-organization
// optional.
func parseDeviceQuery(ps []param) (Query, error) {
	if err := checkParams(ps, paramOrganization, paramIdentifier, paramManufacturing); err != nil {
		return Query{}, err
	}
	q := Query{
		ODS:          value(ps, paramOrganization, SystemODS),
		Interaction:  value(ps, paramIdentifier, SystemInteraction),
		PartyKey:     value(ps, paramIdentifier, SystemPartyKey),
		Manufacturer: value(ps, paramManufacturing, SystemODS),
	}
	if q.ODS == "" {
		return Query{}, invalidParam(paramOrganization, SystemODS)
	}
	if q.Interaction == "" {
		return Query{}, invalidParam(paramIdentifier, SystemInteraction)
	}
	return q, nil
}

// parseEndpointQuery reads GET /Endpoint: organization with an interaction,
// a party key or both, or an interaction with a party key.
func parseEndpointQuery(ps []param) (Query, error) {
	if err := checkParams(ps, paramOrganization, paramIdentifier); err != nil {
		return Query{}, err
	}
	q := Query{
		ODS:         value(ps, paramOrganization, SystemODS),
		Interaction: value(ps, paramIdentifier, SystemInteraction),
		PartyKey:    value(ps, paramIdentifier, SystemPartyKey),
	}
	if (q.ODS != "" && q.Interaction == "" && q.PartyKey == "") || (q.ODS == "" && (q.Interaction == "" || q.PartyKey == "")) {
		return Query{}, invalidCombination()
	}
	return q, nil
}

// DeviceFilter is the LDAP filter the real service sends to SDS for a
// /Device search (lookup/sds_client.py get_as_details).
func (q Query) DeviceFilter() Filter {
	f := And(Equal("nhsIDCode", q.ODS), Equal("objectClass", classAS), Equal("nhsAsSvcIA", q.Interaction))
	if q.Manufacturer != "" {
		f.Subs = append(f.Subs, Equal("nhsMhsManufacturerOrg", q.Manufacturer))
	}
	if q.PartyKey != "" {
		f.Subs = append(f.Subs, Equal("nhsMHSPartyKey", q.PartyKey))
	}
	return f
}

// EndpointFilter is the LDAP filter of an /Endpoint search
// (get_mhs_details): only the parameters given take part.
func (q Query) EndpointFilter() Filter {
	var f Filter
	f.Op = OpAnd
	if q.ODS != "" {
		f.Subs = append(f.Subs, Equal("nhsIDCode", q.ODS))
	}
	f.Subs = append(f.Subs, Equal("objectClass", classMHS))
	if q.Interaction != "" {
		f.Subs = append(f.Subs, Equal("nhsMhsSvcIA", q.Interaction))
	}
	if q.PartyKey != "" {
		f.Subs = append(f.Subs, Equal("nhsMHSPartyKey", q.PartyKey))
	}
	return f
}
