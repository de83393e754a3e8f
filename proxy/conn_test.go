package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// goHead is one request as net/http's parser framed it.
type goHead struct {
	method, target string
	chunked        bool
}

// goFraming parses stream as net/http's server does, request after request,
// each body read to its end, until the stream ends or net/http refuses it
// (after which the server would close the connection).
func goFraming(stream []byte) []goHead {
	br := bufio.NewReader(bytes.NewReader(stream))
	var out []goHead
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		_, err = io.Copy(io.Discard, req.Body)
		out = append(out, goHead{req.Method, req.RequestURI, len(req.TransferEncoding) > 0})
		if err != nil {
			return out
		}
	}
}

// scanFraming feeds stream to a headScanner in pieces of the given sizes
// (cycled), as reads from a connection would come.
func scanFraming(stream []byte, pieces []int) *headScanner {
	h := &headScanner{maxHead: maxHeaderBytes + 8<<10}
	for i := 0; len(stream) > 0; i++ {
		n := len(stream)
		if len(pieces) > 0 {
			n = max(1, min(n, pieces[i%len(pieces)]))
		}
		h.scan(stream[:n])
		stream = stream[n:]
	}
	return h
}

// checkFraming holds the scanner to net/http on one stream: every request
// net/http reads must be the scanner's next head, in order, up to the head
// after which the scanner stops following (the SSP closes the connection
// after that request); and the scanner sees Transfer-Encoding exactly
// where net/http frames a chunked body (HTTP/1.1).
func checkFraming(t *testing.T, stream []byte, pieces []int) {
	t.Helper()
	want := goFraming(stream)
	h := scanFraming(stream, pieces)
	for i, g := range want {
		info, ok := h.next(g.method, g.target)
		if !ok {
			t.Fatalf("request %d (%s %q): the scanner lost the framing net/http follows (got %+v)\nstream %q", i, g.method, g.target, info, stream)
		}
		if g.chunked && !info.transferEncoding {
			t.Fatalf("request %d: net/http reads a chunked body the scanner did not see\nstream %q", i, stream)
		}
		if info.last {
			return
		}
	}
}

func TestHeadScannerFollowsNetHTTP(t *testing.T) {
	for name, stream := range framingSeeds() {
		t.Run(name, func(t *testing.T) {
			for _, pieces := range [][]int{nil, {1}, {2, 3}, {7}, {4096}} {
				checkFraming(t, []byte(stream), pieces)
			}
		})
	}
}

// TestHeadScannerFlags checks what the scanner reports per head.
func TestHeadScannerFlags(t *testing.T) {
	tests := []struct {
		stream   string
		method   string // of the first head, whose target is /a
		cl, te   bool
		last     bool
		nextHead bool // a second head, GET /b, follows and is known
	}{
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n", "POST", true, false, false, true},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "POST", true, true, true, false},
		{"POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n", "POST", true, true, true, false},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n", "POST", false, true, true, false},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "POST", true, false, true, false},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "POST", true, false, true, false},
		{"GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\n\n", "GET", false, false, false, true},
		// A folded line belongs to the field before it: not a header.
		{"GET /a HTTP/1.1\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\nGET /b HTTP/1.1\r\n\r\n", "GET", false, false, false, true},
	}
	for _, tt := range tests {
		for _, pieces := range [][]int{nil, {1}, {5}} {
			h := scanFraming([]byte(tt.stream), pieces)
			info, ok := h.next(tt.method, "/a")
			if !ok || info.contentLength != tt.cl || info.transferEncoding != tt.te || info.last != tt.last {
				t.Errorf("%q in pieces %v: %+v ok=%v, want cl=%v te=%v last=%v", tt.stream, pieces, info, ok, tt.cl, tt.te, tt.last)
				continue
			}
			if _, ok := h.next(http.MethodGet, "/b"); ok != tt.nextHead {
				t.Errorf("%q in pieces %v: second head known=%v, want %v", tt.stream, pieces, ok, tt.nextHead)
			}
		}
	}
	// A head longer than net/http reads stops the watch.
	h := &headScanner{maxHead: 100}
	h.scan([]byte("GET /a HTTP/1.1\r\nX: " + string(bytes.Repeat([]byte("y"), 200)) + "\r\n\r\n"))
	if _, ok := h.next(http.MethodGet, "/a"); ok {
		t.Error("a head over maxHead was followed")
	}
	// A request net/http parsed that the scanner does not have in front
	// is refused: the framing is lost.
	h = scanFraming([]byte("GET /a HTTP/1.1\r\n\r\n"), nil)
	if _, ok := h.next(http.MethodGet, "/other"); ok {
		t.Error("a mismatched head was accepted")
	}
}

func framingSeeds() map[string]string {
	return map[string]string{
		"two gets":            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"post then get":       "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"body looks like req": "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 28\r\n\r\nGET /evil HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"chunked":             "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"cl and te":           "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"http 1.0 te":         "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"bare lf":             "GET /a HTTP/1.1\nHost: x\n\nPOST /b HTTP/1.1\nContent-Length: 2\n\nokGET /c HTTP/1.1\n\n",
		"folded":              "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Content-Length: 5\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"duplicate cl":        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"conflicting cl":      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokGET /b HTTP/1.1\r\n\r\n",
		"leading zeros":       "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 002\r\n\r\nokGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"spaced cl":           "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:  2 \r\n\r\nokGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"cr in line":          "GET /a HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"options star":        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"uri with spaces":     "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	}
}

// FuzzHeadScanner holds the scanner to net/http's own parser on arbitrary
// streams, cut into arbitrary reads: a connection net/http follows must
// never be refused as unfollowable, nor a chunked body missed.
func FuzzHeadScanner(f *testing.F) {
	for _, s := range framingSeeds() {
		f.Add([]byte(s), byte(0))
		f.Add([]byte(s), byte(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut byte) {
		var pieces []int
		if cut > 0 {
			pieces = []int{int(cut), int(cut)/2 + 1, 1}
		}
		checkFraming(t, stream, pieces)
	})
}
