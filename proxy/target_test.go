package proxy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseTargetAccepts(t *testing.T) {
	tests := []struct {
		uri, raw, path, query string
		repaired              bool
	}{
		{"/https://localhost:9443/A20047/STU3/1/gpconnect/metadata", "https://localhost:9443/A20047/STU3/1/gpconnect/metadata", "/A20047/STU3/1/gpconnect/metadata", "", false},
		{"/https:/localhost:9443/A20047/STU3/1/gpconnect/Patient/2", "https://localhost:9443/A20047/STU3/1/gpconnect/Patient/2", "/A20047/STU3/1/gpconnect/Patient/2", "", true},
		{"/https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286", "https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286", "/A20047/STU3/1/gpconnect/Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286", false},
		{"/https://h/A/Patient?identifier=sys|1&x=%2B+a", "https://h/A/Patient?identifier=sys|1&x=%2B+a", "/A/Patient", "identifier=sys|1&x=%2B+a", false},
		{"/https://[::1]:9443/A20047/x", "https://[::1]:9443/A20047/x", "/A20047/x", "", false},
		{"/https://127.0.0.1/A20047/x/", "https://127.0.0.1/A20047/x/", "/A20047/x/", "", false},
		{"/https://h/A/Patient/$gpc.registerpatient", "https://h/A/Patient/$gpc.registerpatient", "/A/Patient/$gpc.registerpatient", "", false},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.uri)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.uri, err)
			continue
		}
		if got.Raw != tt.raw || got.Path != tt.path || got.RawQuery != tt.query || got.Repaired != tt.repaired {
			t.Errorf("ParseTarget(%q) = %+v, want raw %q path %q query %q repaired %v", tt.uri, got, tt.raw, tt.path, tt.query, tt.repaired)
		}
	}
}

func TestParseTargetRefuses(t *testing.T) {
	tests := map[string]struct{ uri, want string }{
		"empty":              {"", "no target"},
		"absolute form":      {"https://localhost:9443/A20047/STU3/1/gpconnect/metadata", "not a forward proxy"},
		"asterisk":           {"*", "not a path"},
		"authority form":     {"localhost:9443", "not a path"},
		"no prefix":          {"/A20047/STU3/1/gpconnect/metadata", "absolute https://"},
		"http":               {"/http://localhost:9443/A20047/STU3/1/gpconnect", "over https"},
		"upper-case scheme":  {"/HTTPS://localhost:9443/A20047", "lower case"},
		"userinfo":           {"/https://user:pw@localhost:9443/A20047/STU3/1/gpconnect", "userinfo"},
		"userinfo no pw":     {"/https://localhost@evil.example/A20047", "userinfo"},
		"backslash host":     {"/https://evil.example\\@localhost:9443/A20047", "back slash"},
		"backslash path":     {"/https://localhost:9443/A20047\\..\\x", "back slash"},
		"encoded slash":      {"/https://localhost:9443/A20047/STU3/1/gpconnect/..%2f..%2fadmin", "encoded slash"},
		"encoded backslash":  {"/https://localhost:9443/A20047/STU3/1/gpconnect/%5c", "encoded slash or back slash"},
		"encoded dot":        {"/https://localhost:9443/A20047/STU3/1/gpconnect/%2e%2e/x", "encoded dot"},
		"dot segments":       {"/https://localhost:9443/A20047/STU3/1/gpconnect/../../other", "dot segment"},
		"single dot":         {"/https://localhost:9443/A20047/./STU3", "dot segment"},
		"second prefix":      {"/https://localhost:9443/A20047/STU3/1/gpconnect/https://evil.example/x", "second prefix"},
		"double prefix":      {"/https://https://localhost:9443/A20047", "host"},
		"empty segment":      {"/https://localhost:9443//A20047", "empty segment"},
		"no host":            {"/https:///A20047", "no host"},
		"no path":            {"/https://localhost:9443", "no path"},
		"root path":          {"/https://localhost:9443/", "no path"},
		"query only":         {"/https://localhost:9443?x=1", "no path"},
		"bad port":           {"/https://localhost:99999/A20047", "port"},
		"port zero padded":   {"/https://localhost:09443/A20047", "port"},
		"empty port":         {"/https://localhost:/A20047", "empty port"},
		"encoded host":       {"/https://local%68ost/A20047", "percent-encoded"},
		"bad escape":         {"/https://localhost/A20047/%zz", "percent-escape"},
		"nul escape":         {"/https://localhost/A20047/%00", "NUL"},
		"fragment":           {"/https://localhost/A20047#x", "fragment"},
		"space":              {"/https://localhost/A 20047", "printable ASCII"},
		"non-ascii":          {"/https://lócalhost/A20047", "printable ASCII"},
		"underscore host":    {"/https://evil_host/A20047", "host name"},
		"bracket not ipv6":   {"/https://[127.0.0.1]/A20047", "IPv6"},
		"unclosed bracket":   {"/https://[::1/A20047", "unclosed"},
		"trailing host junk": {"/https://[::1]x/A20047", "after ']'"},
	}
	for name, tt := range tests {
		_, err := ParseTarget(tt.uri)
		var te *TargetError
		if !errors.As(err, &te) {
			t.Errorf("%s: ParseTarget(%q) = %v, want a TargetError", name, tt.uri, err)
			continue
		}
		if !strings.Contains(te.Reason, tt.want) {
			t.Errorf("%s: reason %q does not mention %q", name, te.Reason, tt.want)
		}
	}
}

// FuzzParseTarget checks that whatever ParseTarget accepts is a plain https
// URL on which the standard parser agrees byte for byte, with no dot segment,
// userinfo or second prefix left for a later hop to reinterpret.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"/https://localhost:9443/A20047/STU3/1/gpconnect/metadata",
		"/https:/localhost:9443/A20047/STU3/1/gpconnect/Patient/2?x=%7C",
		"/https://user@h/a", "/https://h/a/../b", "/https://h/a%2fb", "/https://[::1]:1/a",
		"/https://h/a/https://x/y", "https://h/a", "/https://h:0/a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		tg, err := ParseTarget(uri)
		if err != nil {
			return
		}
		u, perr := url.Parse(tg.Raw)
		if perr != nil {
			t.Fatalf("accepted %q but url.Parse fails: %v", uri, perr)
		}
		if u.Scheme != "https" || u.User != nil || u.Host != tg.Host || u.EscapedPath() != tg.Path || u.RawQuery != tg.RawQuery {
			t.Fatalf("accepted %q but url.Parse sees %#v", uri, u)
		}
		for _, seg := range strings.Split(tg.Path, "/") {
			if seg == "." || seg == ".." || seg == "https:" {
				t.Fatalf("accepted %q with segment %q", uri, seg)
			}
		}
		if strings.Contains(tg.Path, "//") || !strings.HasPrefix(tg.Path, "/") {
			t.Fatalf("accepted %q with path %q", uri, tg.Path)
		}
		if !strings.HasSuffix(uri, strings.TrimPrefix(tg.Raw, "https://")) {
			t.Fatalf("accepted %q but target %q is not its suffix", uri, tg.Raw)
		}
	})
}
