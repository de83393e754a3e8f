package sds

import (
	"reflect"
	"strings"
	"testing"

	"sspemu/gpconnect"
)

// providerMHS is the demonstrator's MHS record for the slot search.
func providerMHS(t *testing.T) Entry {
	t.Helper()
	d := NewDirectory(build(t, testConfig()))
	for _, e := range d.records {
		if e.Value("nhsMhsSvcIA") == gpconnect.SearchSlot {
			return e
		}
	}
	t.Fatal("no MHS record for the slot search")
	return Entry{}
}

func TestFilterMatch(t *testing.T) {
	e := providerMHS(t)
	tests := []struct {
		filter string
		want   Tri
	}{
		{"(objectClass=nhsMhs)", True},
		{"(objectclass=NHSMHS)", True}, // names and object classes ignore case
		{"(objectClass=nhsAs)", False},
		{"(nhsIDCode=A20047)", True},
		{"(nhsidcode=A20047)", True},
		{"(nhsIDCode=a20047)", False}, // caseExactMatch in the SDS schema
		{"(nhsIDCode=  A20047 )", True},
		{"(nhsMHSPartyKey=a20047-0000002)", True}, // caseIgnoreMatch
		{"(nhsMhsSvcIA=" + gpconnect.SearchSlot + ")", True},
		{"(nhsMhsSvcIA=" + strings.ToUpper(gpconnect.SearchSlot) + ")", False},
		{"(1.2.826.0.1285.0.1.10=A20047)", True}, // by OID
		{"(nhsMhsFQDN=localhost)", Undefined},    // no equality rule
		{"(nhsMhsFQDN=*)", True},
		{"(nhsAsSvcIA=*)", False},
		{"(noSuchAttribute=1)", Undefined},
		{"(noSuchAttribute=*)", False},
		{"(nhsIDCode=A2*)", Undefined}, // no substrings rule
		{"(nhsIDCode>=A)", Undefined},  // no ordering rule
		{"(nhsIDCode~=A20047)", True},  // approx falls back to equality
		{"(!(nhsIDCode=B82617))", True},
		{"(!(noSuchAttribute=1))", Undefined},
		{"(&(objectClass=nhsMhs)(nhsIDCode=A20047))", True},
		{"(&(objectClass=nhsMhs)(noSuchAttribute=1))", Undefined},
		{"(&(objectClass=nhsAs)(noSuchAttribute=1))", False},
		{"(|(noSuchAttribute=1)(nhsIDCode=A20047))", True},
		{"(|(noSuchAttribute=1)(nhsIDCode=B82617))", Undefined},
		{"(&)", True},
		{"(|)", False},
		{"(nhsIDCode:caseIgnoreMatch:=a20047)", True},
		{"(nhsIDCode:2.5.13.5:=a20047)", False},
		{"(nhsIDCode:=A20047)", True},
		{"(nhsIDCode:1.2.3.4:=A20047)", Undefined},
		{"(ou:dn:=services)", True},
		{"(ou:=services)", False},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(e); got != tt.want {
				t.Errorf("Match = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFilterSubstringsOnNamingAttributes(t *testing.T) {
	d := NewDirectory(build(t, testConfig()))
	for _, tt := range []struct {
		filter string
		want   Tri
	}{
		{"(ou=Serv*)", True}, {"(ou=*vice*)", True}, {"(ou=*ices)", True}, {"(ou=s*r*s)", True},
		{"(ou=x*)", False}, {"(ou=services*s)", False},
	} {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(d.services); got != tt.want {
			t.Errorf("%s = %d, want %d", tt.filter, got, tt.want)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, s := range []string{"", "nhsIDCode=A20047", "(nhsIDCode=A20047", "(&(a=b)", "(a=b))", "(a=\\zz)", "(!(a=b)(c=d))"} {
		if f, err := ParseFilter(s); err == nil {
			t.Errorf("ParseFilter(%q) = %v, want an error", s, f)
		}
	}
	deep := strings.Repeat("(!", 100) + "(a=b)" + strings.Repeat(")", 100)
	if _, err := ParseFilter(deep); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Errorf("100 levels: %v", err)
	}
}

func TestFilterStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"(&(nhsIDCode=A20047)(objectClass=nhsMhs)(nhsMhsSvcIA=urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1))",
		"(|(a=b)(!(c=*))(d>=e)(f<=g)(h~=i))",
		"(cn=a*b*c)", "(cn=*b*)", "(cn=a*)", "(cn=*c)",
		"(cn:dn:2.5.13.2:=x)", "(cn:=\\2a\\28\\29\\5c)",
	} {
		f, err := ParseFilter(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if f.String() != s {
			t.Errorf("String() = %s, want %s", f.String(), s)
		}
		g, err := ParseFilter(f.String())
		if err != nil || !reflect.DeepEqual(f, g) {
			t.Errorf("%s: round trip %v %v", s, g, err)
		}
	}
}

// TestFHIRFiltersAreTheSpecsLDAPFilters checks that the FHIR API runs the
// LDAP searches GP Connect 1.2.7 and the real service name.
func TestFHIRFiltersAreTheSpecsLDAPFilters(t *testing.T) {
	ep := Query{ODS: "A20047", Interaction: gpconnect.SearchSlot}.EndpointFilter().String()
	if want := "(&(nhsIDCode=A20047)(objectClass=nhsMhs)(nhsMhsSvcIA=" + gpconnect.SearchSlot + "))"; ep != want {
		t.Errorf("endpoint filter %s", ep)
	}
	dev := Query{ODS: "Y12345", Interaction: gpconnect.ReadMetadata, Manufacturer: "Y90001", PartyKey: "K"}.DeviceFilter().String()
	if want := "(&(nhsIDCode=Y12345)(objectClass=nhsAs)(nhsAsSvcIA=" + gpconnect.ReadMetadata + ")(nhsMhsManufacturerOrg=Y90001)(nhsMHSPartyKey=K))"; dev != want {
		t.Errorf("device filter %s", dev)
	}
}
