package sds

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"sspemu/gpconnect"
)

// FuzzQuery feeds raw query strings to the SDS FHIR API's parser and the
// handler: every answer is JSON, 200 or 400, and an accepted query's
// filter reads back the same.
func FuzzQuery(f *testing.F) {
	f.Add("organization="+org(providerODS)+"&identifier="+interaction(gpconnect.SearchSlot), true)
	f.Add("organization="+org(providerODS)+"&identifier="+interaction(gpconnect.SearchSlot)+"&identifier="+partyKey(providerKey)+"&manufacturing-organization="+org("Y90002"), true)
	f.Add("identifier="+interaction(gpconnect.ReadMetadata)+"&identifier="+partyKey(providerKey), false)
	f.Add("organization=%zz&&identifier=&=|&x", false)
	f.Add("organization=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fods-organization-code%7CA20047+&identifier=+", true)
	h := New(Options{Registry: newRegistry(f, testConfig()).load})
	dir := h.Directory()
	f.Fuzz(func(t *testing.T, raw string, device bool) {
		ps, err := parseQuery(raw)
		if err == nil {
			var q Query
			var filter Filter
			if device {
				q, err = parseDeviceQuery(ps)
				filter = q.DeviceFilter()
			} else {
				q, err = parseEndpointQuery(ps)
				filter = q.EndpointFilter()
			}
			if err == nil {
				back, perr := ParseFilter(filter.String())
				if perr != nil || !reflect.DeepEqual(back, filter) {
					t.Fatalf("filter %s reads back as %v (%v)", filter, back, perr)
				}
				dir.Search(filter)
			}
		}
		path := BasePath + "/Endpoint"
		if device {
			path = BasePath + "/Device"
		}
		req := httptest.NewRequest("GET", "https://localhost:7443"+path, nil)
		req.URL.RawQuery = raw
		req.Header.Set("apikey", "k")
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q", rec.Code, raw)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("not JSON for %q: %s", raw, rec.Body)
		}
	})
}

// FuzzFilter feeds LDAP filter strings (as gldap hands them over) to the
// parser and the evaluator: no panic, and String is stable: once written,
// a filter reads back the same. (go-ldap's compiler is lenient: "(a:dn)"
// reads as the rule "dn", written back as "(a:dn:=)", which reads as
// dnAttributes; from there on it is stable.)
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		"(&(nhsIDCode=A20047)(objectClass=nhsMhs)(nhsMhsSvcIA=" + gpconnect.SearchSlot + "))",
		"(|(!(a=*))(ou=s*r*s)(b>=c)(d<=e)(f~=g))",
		"(ou:dn:caseIgnoreMatch:=services)",
		"(cn=\\2a\\00)", "(&)", "(|)", "(a=**)",
	} {
		f.Add(s)
	}
	dir := NewDirectory(build(f, testConfig()))
	nodes := dir.tree()
	f.Fuzz(func(t *testing.T, s string) {
		filter, err := ParseFilter(s)
		if err != nil {
			return
		}
		once, err := ParseFilter(filter.String())
		if err != nil {
			t.Fatalf("%q: String %q does not parse: %v", s, filter.String(), err)
		}
		twice, err := ParseFilter(once.String())
		if err != nil || !reflect.DeepEqual(once, twice) {
			t.Fatalf("%q: String %q reads back as %v (%v)", s, once.String(), twice, err)
		}
		for _, n := range nodes {
			filter.Match(n.entry)
		}
		for _, base := range []string{BaseDN, "", "o=nhs"} {
			dir.ldapSearch(base, 2, filter)
		}
	})
}
