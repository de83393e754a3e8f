package sds

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sspemu/gpconnect"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const corrID = "6d3d3674-7ce5-11ec-90d6-0242ac120003"

type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// get sends one request to the handler as a consumer would, with an apikey
// unless headers say otherwise ("" removes a header).
func get(t *testing.T, h http.Handler, method, target string, headers map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, "https://localhost:7443"+target, nil)
	req.Header.Set("apikey", "any-key")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: body is not JSON (%d): %s", method, target, rec.Code, rec.Body)
	}
	return a
}

func q(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pairs[i] + "=" + url.QueryEscape(pairs[i+1]))
	}
	return b.String()
}

func org(ods string) string            { return SystemODS + "|" + ods }
func interaction(id string) string     { return SystemInteraction + "|" + id }
func partyKey(key string) string       { return SystemPartyKey + "|" + key }
func endpointPath(query string) string { return BasePath + "/Endpoint?" + query }
func devicePath(query string) string   { return BasePath + "/Device?" + query }

func entries(a answer) []map[string]any {
	var out []map[string]any
	list, _ := a.body["entry"].([]any)
	for _, e := range list {
		out = append(out, e.(map[string]any))
	}
	return out
}

func resourceOf(e map[string]any) map[string]any { return e["resource"].(map[string]any) }

// identifierValue finds the value of system in a resource's identifier list.
func identifierValue(res map[string]any, system string) string {
	ids, _ := res["identifier"].([]any)
	for _, id := range ids {
		m := id.(map[string]any)
		if m["system"] == system {
			return m["value"].(string)
		}
	}
	return ""
}

// golden compares a body with testdata/<name>.json after replacing the
// Bundle's random id; -update rewrites the file.
func golden(t *testing.T, name, body string) {
	t.Helper()
	body = regexp.MustCompile(`("resourceType": "Bundle",\s+"id": )"[0-9a-f-]{36}"`).ReplaceAllString(body, `$1"BUNDLE-ID"`)
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sds -update to create it)", err)
	}
	if string(want) != body {
		t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", name, body, want)
	}
}

// TestEndpointLookup is step 1 of the GP Connect lookup through the FHIR
// API: the practice's service root and party key by ODS code and
// interaction.
func TestEndpointLookup(t *testing.T) {
	h := New(Options{Registry: newRegistry(t, testConfig()).load}).Handler()
	a := get(t, h, "GET", endpointPath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot))), map[string]string{"X-Correlation-ID": corrID, "X-Request-ID": "r-1"})
	if a.status != 200 || a.header.Get("Content-Type") != mimeFHIRJSON || a.header.Get("X-Correlation-ID") != corrID || a.header.Get("X-Request-ID") != "r-1" {
		t.Fatalf("answer %d %v", a.status, a.header)
	}
	golden(t, "endpoint-slot", a.raw)
	es := entries(a)
	if a.body["total"] != 1.0 || len(es) != 1 {
		t.Fatalf("total %v, %d entries", a.body["total"], len(es))
	}
	ep := resourceOf(es[0])
	if ep["address"] != providerRoot || identifierValue(ep, SystemPartyKey) != providerKey || identifierValue(ep, SystemMHSID) != MHSID(providerKey, gpconnect.SearchSlot) {
		t.Errorf("endpoint %v", ep)
	}
	if es[0]["fullUrl"] != "https://localhost:7443"+BasePath+"/Endpoint/"+ep["id"].(string) {
		t.Errorf("fullUrl %v", es[0]["fullUrl"])
	}
}

// TestDeviceLookup is step 2, and the consumer's own-ASID search.
func TestDeviceLookup(t *testing.T) {
	h := New(Options{Registry: newRegistry(t, testConfig()).load}).Handler()
	a := get(t, h, "GET", devicePath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot), "identifier", partyKey(providerKey))), nil)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	golden(t, "device-provider", a.raw)
	es := entries(a)
	if len(es) != 1 || identifierValue(resourceOf(es[0]), SystemASID) != providerASID {
		t.Fatalf("entries %v", es)
	}
	// The consumer's own ASID: its ODS, an interaction it sends, its supplier.
	own := devicePath(q("organization", org("Y12345"), "identifier", interaction(gpconnect.ReadMetadata), "manufacturing-organization", org("Y90001")))
	a = get(t, h, "GET", own, nil)
	if es := entries(a); len(es) != 1 || identifierValue(resourceOf(es[0]), SystemASID) != consumerASID {
		t.Fatalf("own ASID: %s", a.raw)
	}
	// manufacturing-organization is caseIgnoreMatch in the SDS schema.
	a = get(t, h, "GET", strings.Replace(own, "Y90001", "y90001", 1), nil)
	if len(entries(a)) != 1 {
		t.Errorf("supplier in lower case: %s", a.raw)
	}
}

// TestSearchCombinations runs every parameter combination of both
// resources against the default registry plus a second practice.
func TestSearchCombinations(t *testing.T) {
	h := New(Options{Registry: newRegistry(t, secondPractice(testConfig())).load}).Handler()
	foundations := 9 // Foundations interactions the demonstrator receives
	all := foundations + 6
	tests := []struct {
		name, target string
		want         int
	}{
		{"endpoint: ods + interaction", endpointPath(q("organization", org(providerODS), "identifier", interaction(gpconnect.ReadMetadata))), 1},
		{"endpoint: ods + interaction + party key", endpointPath(q("organization", org(providerODS), "identifier", interaction(gpconnect.ReadMetadata), "identifier", partyKey(providerKey))), 1},
		{"endpoint: ods + party key", endpointPath(q("organization", org(providerODS), "identifier", partyKey(providerKey))), all},
		{"endpoint: interaction + party key", endpointPath(q("identifier", interaction(gpconnect.SearchPatient), "identifier", partyKey("B82617-0000001"))), 1},
		{"endpoint: party key is caseIgnoreMatch", endpointPath(q("identifier", interaction(gpconnect.SearchPatient), "identifier", partyKey("b82617-0000001"))), 1},
		{"endpoint: ODS is caseExactMatch", endpointPath(q("organization", org("a20047"), "identifier", interaction(gpconnect.ReadMetadata))), 0},
		{"endpoint: interaction not received", endpointPath(q("organization", org("B82617"), "identifier", interaction(gpconnect.SearchSlot))), 0},
		{"endpoint: a consumer has no MHS record", endpointPath(q("organization", org("Y12345"), "identifier", interaction(gpconnect.ReadMetadata))), 0},
		{"endpoint: unknown ODS", endpointPath(q("organization", org("ZZZ999"), "identifier", interaction(gpconnect.ReadMetadata))), 0},
		{"endpoint: last value wins", endpointPath(q("organization", org("B82617"), "organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot))), 1},
		{"device: ods + interaction", devicePath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot))), 1},
		{"device: consumer by an interaction it sends", devicePath(q("organization", org("Y12345"), "identifier", interaction(gpconnect.CreateAppointment))), 1},
		{"device: wrong party key", devicePath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot), "identifier", partyKey("B82617-0000001"))), 0},
		{"device: wrong supplier", devicePath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchSlot), "manufacturing-organization", org("Y90001"))), 0},
		{"device: second practice has no supplier", devicePath(q("organization", org("B82617"), "identifier", interaction(gpconnect.ReadMetadata), "manufacturing-organization", org("Y90002"))), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, h, "GET", tt.target, nil)
			if a.status != 200 || a.body["total"] != float64(tt.want) || len(entries(a)) != tt.want {
				t.Fatalf("%d total %v: %s", a.status, a.body["total"], a.raw)
			}
			link := a.body["link"].([]any)[0].(map[string]any)
			if link["relation"] != "self" || !strings.HasPrefix(link["url"].(string), "https://localhost:7443"+BasePath+"/") || strings.Contains(link["url"].(string), "%7C") {
				t.Errorf("self link %v", link)
			}
			for _, e := range entries(a) {
				if e["search"].(map[string]any)["mode"] != "match" {
					t.Errorf("search %v", e["search"])
				}
			}
			if a.body["type"] != "searchset" {
				t.Errorf("type %v", a.body["type"])
			}
		})
	}
}

// TestBadRequests checks every 400 against the real service's messages.
func TestBadRequests(t *testing.T) {
	h := New(Options{Registry: newRegistry(t, testConfig()).load}).Handler()
	orgMsg := "HTTP 400: Bad Request (Missing or invalid 'organization' query parameter. Should be 'organization=https://fhir.nhs.uk/Id/ods-organization-code|value')"
	idMsg := "HTTP 400: Bad Request (Missing or invalid 'identifier' query parameter. Should be 'identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|value')"
	idEither := "HTTP 400: Bad Request (Missing or invalid 'identifier' query parameter. Should be one or both of: ['identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|value', 'identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey|value')"
	manuMsg := "HTTP 400: Bad Request (Missing or invalid 'manufacturing-organization' query parameter. Should be 'manufacturing-organization=https://fhir.nhs.uk/Id/ods-organization-code|value')"
	combo := "HTTP 400: Bad Request (Missing or invalid query parameters. Should one of following combinations: ['organization=https://fhir.nhs.uk/Id/ods-organization-code|value&identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|value&identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey|value''organization=https://fhir.nhs.uk/Id/ods-organization-code|value&identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|value''organization=https://fhir.nhs.uk/Id/ods-organization-code|value&identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey|value''identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|value&identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey|value'])"
	in := interaction(gpconnect.ReadMetadata)
	tests := []struct{ name, target, want string }{
		{"device: no organization", devicePath(q("identifier", in)), orgMsg},
		{"device: organization without system", devicePath(q("organization", providerODS, "identifier", in)), orgMsg},
		{"device: organization blank", devicePath(q("organization", SystemODS+"| ", "identifier", in)), orgMsg},
		{"device: no interaction", devicePath(q("organization", org(providerODS))), idMsg},
		{"device: only a party key", devicePath(q("organization", org(providerODS), "identifier", partyKey(providerKey))), idMsg},
		{"device: identifier with another system", devicePath(q("organization", org(providerODS), "identifier", "https://fhir.nhs.uk/Id/nhsSpineASID|1")), idEither},
		{"device: manufacturer without system", devicePath(q("organization", org(providerODS), "identifier", in, "manufacturing-organization", "Y90001")), manuMsg},
		{"device: unknown parameter", devicePath(q("organization", org(providerODS), "identifier", in, "_format", "json")), "HTTP 400: Bad Request (Illegal query parameter '_format')"},
		{"device: first illegal parameter named", devicePath("zeta=1&" + q("organization", org(providerODS)) + "&alpha=2"), "HTTP 400: Bad Request (Illegal query parameter 'zeta')"},
		{"endpoint: nothing", BasePath + "/Endpoint", combo},
		{"endpoint: organization only", endpointPath(q("organization", org(providerODS))), combo},
		{"endpoint: interaction only", endpointPath(q("identifier", in)), combo},
		{"endpoint: party key only", endpointPath(q("identifier", partyKey(providerKey))), combo},
		{"endpoint: manufacturing-organization is a Device parameter", endpointPath(q("organization", org(providerODS), "identifier", in, "manufacturing-organization", org("Y90001"))), "HTTP 400: Bad Request (Illegal query parameter 'manufacturing-organization')"},
		{"endpoint: bad escape", BasePath + "/Endpoint?organization=%zz", "HTTP 400: Bad Request (the value of query parameter 'organization' is not URL-encoded properly)"},
		{"bad correlation id", endpointPath(q("organization", org(providerODS), "identifier", in)) + "#corr", "HTTP 400: Bad Request (Invalid X-Correlation-ID header. Should be an UUIDv4 matching regex '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"X-Correlation-ID": corrID}
			if strings.HasSuffix(tt.target, "#corr") {
				headers["X-Correlation-ID"] = "not-a-uuid"
			}
			a := get(t, h, "GET", strings.TrimSuffix(tt.target, "#corr"), headers)
			checkOutcome(t, a, 400, "required", "BAD_REQUEST", tt.want)
			if headers["X-Correlation-ID"] == corrID && a.header.Get("X-Correlation-ID") != corrID {
				t.Errorf("X-Correlation-ID %q not echoed", a.header.Get("X-Correlation-ID"))
			}
		})
	}
}

func checkOutcome(t *testing.T, a answer, status int, code, spineCode, diagnostics string) {
	t.Helper()
	if a.status != status || a.body["resourceType"] != "OperationOutcome" || a.header.Get("Content-Type") != mimeFHIRJSON {
		t.Fatalf("%d %v: %s", a.status, a.header, a.raw)
	}
	is := a.body["issue"].([]any)[0].(map[string]any)
	c := is["details"].(map[string]any)["coding"].([]any)[0].(map[string]any)
	if is["severity"] != "error" || is["code"] != code || c["code"] != spineCode || c["system"] != spineErrorSystem || is["diagnostics"] != diagnostics {
		t.Errorf("issue %v\nwant code %s, %s, %q", is, code, spineCode, diagnostics)
	}
	id := a.header.Get("X-Correlation-ID")
	if !uuidPattern.MatchString(id) || a.body["id"] != id {
		t.Errorf("outcome id %v, X-Correlation-ID %q", a.body["id"], id)
	}
}

// TestHeadersPathsAndMethods covers apikey, Accept, X-Correlation-ID,
// unknown paths and methods.
func TestHeadersPathsAndMethods(t *testing.T) {
	reg := newRegistry(t, testConfig())
	open := New(Options{Registry: reg.load}).Handler()
	keyed := New(Options{Registry: reg.load, APIKey: "s3cret"}).Handler()
	ok := endpointPath(q("organization", org(providerODS), "identifier", interaction(gpconnect.ReadMetadata)))

	for _, tt := range []struct {
		name    string
		h       http.Handler
		key     string
		status  int
		display string
	}{
		{"no apikey", open, "", 401, "Failed to resolve API Key variable request.header.apikey"},
		{"any apikey when none is configured", open, "whatever", 200, ""},
		{"wrong apikey", keyed, "whatever", 401, "Invalid ApiKey"},
		{"right apikey", keyed, "s3cret", 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, tt.h, "GET", ok, map[string]string{"apikey": tt.key})
			if a.status != tt.status {
				t.Fatalf("status %d: %s", a.status, a.raw)
			}
			if tt.status == 401 {
				c := a.body["issue"].([]any)[0].(map[string]any)["details"].(map[string]any)["coding"].([]any)[0].(map[string]any)
				if c["code"] != "ACCESS_DENIED" || c["display"] != tt.display || c["system"] != "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode" {
					t.Errorf("coding %v", c)
				}
			}
		})
	}

	for _, tt := range []struct {
		accept string
		status int
		mime   string
	}{
		{"", 200, mimeFHIRJSON},
		{"*/*", 200, mimeFHIRJSON},
		{"application/fhir+JSON", 200, mimeFHIRJSON},
		{",  ,  text/plain , application/fhir+json", 200, mimeFHIRJSON},
		{"application/json", 200, mimeJSON},
		{"application/json, application/fhir+json", 200, mimeFHIRJSON},
		{"text/plain,application/xml", 406, mimeFHIRJSON},
		{"application/fhir+xml", 406, mimeFHIRJSON},
		{"application/fhir+json; charset=utf-8", 406, mimeFHIRJSON},
	} {
		t.Run("Accept "+tt.accept, func(t *testing.T) {
			a := get(t, open, "GET", ok, map[string]string{"Accept": tt.accept})
			if a.status != tt.status || a.header.Get("Content-Type") != tt.mime {
				t.Fatalf("%d %s: %s", a.status, a.header.Get("Content-Type"), a.raw)
			}
			if tt.status == 406 {
				checkOutcome(t, a, 406, "not-supported", "MISSING_OR_INVALID_HEADER", "Accept type not supported")
			}
		})
	}

	t.Run("correlation id", func(t *testing.T) {
		upper := strings.ToUpper(corrID)
		if a := get(t, open, "GET", ok, map[string]string{"X-Correlation-ID": upper}); a.header.Get("X-Correlation-ID") != upper {
			t.Errorf("echo %q", a.header.Get("X-Correlation-ID"))
		}
		a := get(t, open, "GET", ok, nil)
		if id := a.header.Get("X-Correlation-ID"); !uuidPattern.MatchString(id) {
			t.Errorf("no X-Correlation-ID sent: got %q, want a new UUID", id)
		}
	})

	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			req := httptest.NewRequest(method, "https://localhost:7443"+ok, nil)
			req.Header.Set("apikey", "k")
			req.Header.Set("X-Correlation-ID", corrID)
			rec := httptest.NewRecorder()
			open.ServeHTTP(rec, req)
			if rec.Code != 405 || rec.Header().Get("Allow") != "GET" || rec.Header().Get("X-Correlation-ID") != corrID {
				t.Fatalf("%d %v", rec.Code, rec.Header())
			}
			if method != "HEAD" {
				a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
				_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
				checkOutcome(t, a, 405, "not-supported", "NOT_IMPLEMENTED", "HTTP operation not supported")
			}
		})
	}

	for _, path := range []string{BasePath + "/Organization", BasePath + "/endpoint", BasePath + "/Endpoint/", BasePath + "/Device/1", BasePath, BasePath + "/"} {
		t.Run("path "+path, func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				a := get(t, open, method, path, nil)
				checkOutcome(t, a, 404, "not-found", "NO_RECORD_FOUND", "HTTP endpoint not found")
			}
		})
	}
}

// TestReloadChangesAnswers swaps the registry as a hot reload does: the
// next request sees the new table.
func TestReloadChangesAnswers(t *testing.T) {
	reg := newRegistry(t, testConfig())
	h := New(Options{Registry: reg.load}).Handler()
	path := endpointPath(q("organization", org("B82617"), "identifier", interaction(gpconnect.SearchPatient)))
	if a := get(t, h, "GET", path, nil); len(entries(a)) != 0 {
		t.Fatalf("before: %s", a.raw)
	}
	reg.p.Store(build(t, secondPractice(testConfig())))
	a := get(t, h, "GET", path, nil)
	if es := entries(a); len(es) != 1 || resourceOf(es[0])["address"] != "https://localhost:9443/B82617/STU3/1/gpconnect" {
		t.Fatalf("after the reload: %s", a.raw)
	}
	c := testConfig()
	c.Systems[1].Endpoint = "https://localhost:9444/A20047/STU3/1/gpconnect"
	reg.p.Store(build(t, c))
	a = get(t, h, "GET", endpointPath(q("organization", org(providerODS), "identifier", interaction(gpconnect.SearchPatient))), nil)
	if es := entries(a); len(es) != 1 || resourceOf(es[0])["address"] != c.Systems[1].Endpoint {
		t.Fatalf("moved endpoint: %s", a.raw)
	}
}

// TestDeviceExtensions checks the Device's extensions: the supplier first,
// then one interaction extension per interaction, in catalogue order.
func TestDeviceExtensions(t *testing.T) {
	h := New(Options{Registry: newRegistry(t, testConfig()).load}).Handler()
	a := get(t, h, "GET", devicePath(q("organization", org("Y12345"), "identifier", interaction(gpconnect.ReadMetadata))), nil)
	dev := resourceOf(entries(a)[0])
	var urls, ids []string
	for _, e := range dev["extension"].([]any) {
		m := e.(map[string]any)
		urls = append(urls, m["url"].(string))
		ids = append(ids, m["valueReference"].(map[string]any)["identifier"].(map[string]any)["value"].(string))
	}
	var want []string
	for _, in := range gpconnect.Interactions() {
		if in.Group != gpconnect.GroupStructured {
			want = append(want, in.ID)
		}
	}
	if urls[0] != ExtensionManufacturer || ids[0] != "Y90001" || !slices.Equal(ids[1:], want) {
		t.Errorf("extensions %v %v", urls, ids)
	}
	if owner := dev["owner"].(map[string]any)["identifier"].(map[string]any); owner["value"] != "Y12345" || owner["system"] != SystemODS {
		t.Errorf("owner %v", owner)
	}
}
