package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"sspemu/agreements"
)

// Target is the provider URL a consumer asked for, taken from the raw request
// URI and kept byte for byte: the endpoint check compares Raw with the
// registered service root, and the provider receives Path and RawQuery
// exactly as the consumer sent them.
type Target struct {
	Raw      string // https://host[:port]/path[?query], as forwarded
	Host     string // host[:port], as sent
	Path     string // the escaped path, as sent
	RawQuery string // the query, as sent, without '?'
	HasQuery bool   // a '?' was sent, even with an empty query
	Repaired bool   // a collapsed "https:/" was repaired to "https://"
}

// TargetError says why a request URI holds no usable target; its message
// says what to send instead.
type TargetError struct{ Reason string }

func (e *TargetError) Error() string { return e.Reason }

func targetErr(format string, args ...any) error {
	return &TargetError{Reason: fmt.Sprintf(format, args...)}
}

const prefixHint = "send the provider's full URL after the SSP's own address, e.g. https://<ssp>/https://<provider-host>/<ODS>/STU3/1/gpconnect/metadata"

// ParseTarget takes the raw request URI (http.Request.RequestURI, never a
// cleaned path) and returns the absolute https target that follows its first
// '/'. It refuses anything that could make the provider, or a URL parser on
// the way, see another host or path than the bytes that are checked:
// userinfo, back slashes, percent-encoded slashes, back slashes or dots,
// dot segments, empty segments (a second prefix), a bad port and any byte
// outside printable ASCII.
func ParseTarget(requestURI string) (Target, error) {
	if requestURI == "" {
		return Target{}, targetErr("the request has no target URL: %s", prefixHint)
	}
	for i := 0; i < len(requestURI); i++ {
		if c := requestURI[i]; c <= ' ' || c >= 0x7f {
			return Target{}, targetErr("the target URL holds a byte that is not printable ASCII (0x%02x at offset %d): percent-encode it", c, i)
		}
	}
	if requestURI[0] != '/' {
		if strings.HasPrefix(requestURI, "https://") || strings.HasPrefix(requestURI, "http://") {
			return Target{}, targetErr("the SSP is not a forward proxy and does not take absolute-form requests: %s", prefixHint)
		}
		return Target{}, targetErr("the request target %q is not a path: %s", requestURI, prefixHint)
	}
	rest := requestURI[1:]
	var t Target
	switch {
	case strings.HasPrefix(rest, "https://"):
		rest = rest[len("https://"):]
	case strings.HasPrefix(rest, "https:/"):
		rest = rest[len("https:/"):]
		t.Repaired = true
	case strings.HasPrefix(rest, "http://"), strings.HasPrefix(rest, "http:/"):
		return Target{}, targetErr("the target URL uses http: providers are only called over https, send https://")
	case strings.HasPrefix(strings.ToLower(rest), "https:"):
		return Target{}, targetErr("the target URL's scheme must be written \"https\" in lower case, as the registered endpoint is")
	default:
		return Target{}, targetErr("the path after the SSP's address must be an absolute https:// URL: %s", prefixHint)
	}
	if strings.ContainsRune(rest, '#') {
		return Target{}, targetErr("the target URL holds a fragment ('#'): leave it out")
	}
	if strings.ContainsRune(rest, '\\') {
		return Target{}, targetErr("the target URL holds a back slash: use '/' only")
	}
	authEnd := strings.IndexAny(rest, "/?")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	t.Host = rest[:authEnd]
	if err := checkAuthority(t.Host); err != nil {
		return Target{}, err
	}
	pathAndQuery := rest[authEnd:]
	t.Path, t.RawQuery, t.HasQuery = strings.Cut(pathAndQuery, "?")
	if err := checkPath(t.Path); err != nil {
		return Target{}, err
	}
	t.Raw = "https://" + t.Host + pathAndQuery
	// Whatever a standard parser makes of the same bytes must agree with us.
	u, err := url.Parse(t.Raw)
	if err != nil {
		return Target{}, targetErr("the target URL does not parse: %v", errors.Unwrap(err))
	}
	if u.Host != t.Host || u.User != nil || u.EscapedPath() != t.Path || u.RawQuery != t.RawQuery {
		return Target{}, targetErr("the target URL is ambiguous: send a plain https://host/path?query")
	}
	return t, nil
}

func checkAuthority(a string) error {
	switch {
	case a == "":
		return targetErr("the target URL has no host: %s", prefixHint)
	case strings.ContainsRune(a, '@'):
		return targetErr("the target URL holds userinfo ('@' in %q): the SSP never passes credentials in the URL, leave it out", a)
	case strings.ContainsRune(a, '%'):
		return targetErr("the target URL's host %q is percent-encoded: send the host name as registered", a)
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return targetErr("the target URL's host %q has an unclosed '['", a)
		}
		host, port = a[1:end], a[end+1:]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return targetErr("the target URL's host %q is not an IPv6 address", a)
		}
		if port != "" && port[0] != ':' {
			return targetErr("the target URL's host %q has bytes after ']'", a)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(a, ":") {
			return targetErr("the target URL's host %q ends with an empty port", a)
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if port == "" {
			return targetErr("the target URL's host %q ends with an empty port", a)
		}
		if !agreements.IsHostname(host) {
			return targetErr("the target URL's host %q is not a host name or IPv4 address", host)
		}
	} else if !agreements.IsHostname(host) {
		return targetErr("the target URL's host %q is not a host name or IPv4 address", host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return targetErr("the target URL's port %q is not a number from 1 to 65535", port)
		}
	}
	return nil
}

func checkPath(p string) error {
	if p == "" || p == "/" {
		return targetErr("the target URL has no path: it must continue with the provider's service root, e.g. /<ODS>/STU3/1/gpconnect")
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return targetErr("the target URL's path has a bad percent-escape at %q", p[i:min(len(p), i+3)])
		}
		switch strings.ToLower(p[i+1 : i+3]) {
		case "2f", "5c":
			return targetErr("the target URL's path holds an encoded slash or back slash (%s): send the path unencoded", p[i:i+3])
		case "2e":
			return targetErr("the target URL's path holds an encoded dot (%s): send '.' unencoded, without dot segments", p[i:i+3])
		case "00":
			return targetErr("the target URL's path holds an encoded NUL byte")
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "." || s == "..":
			return targetErr("the target URL's path holds a dot segment (%q): send the provider's path without ./ or ../", s)
		case s == "https:" || s == "http:":
			return targetErr("the target URL holds a second prefix (%q): send the provider's URL once", p)
		case s == "" && i < len(segs)-1:
			return targetErr("the target URL's path holds an empty segment ('//'): send each segment once")
		}
	}
	return nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
