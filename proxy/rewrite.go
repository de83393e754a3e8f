// rewrite.go turns a cleared request into the one sent to the provider:
// its absolute target and the headers a proxy must drop or add.

package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 that a proxy
// must not pass on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forwardedFor is the RFC 7239 Forwarded element naming the consumer.
func forwardedFor(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if strings.Contains(host, ":") {
		return `for="[` + host + `]"`
	}
	return "for=" + host
}

// targetURL is the outgoing URL: Opaque holds the path exactly as the
// consumer sent it, so nothing on the way re-encodes it.
func targetURL(t Target) *url.URL {
	return &url.URL{Scheme: "https", Host: t.Host, Opaque: t.Path, RawQuery: t.RawQuery, ForceQuery: t.HasQuery && t.RawQuery == ""}
}
