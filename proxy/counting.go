// counting.go counts the bytes each way for the transaction record.

package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// countingWriter counts what goes back to the consumer and flushes as it
// goes when the provider streams without a length.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	length int64 // Content-Length sent, or -1
	// closeConn, when it points at true, ends the connection after this
	// answer, whatever headers the provider's answer brought (the engine
	// replaces the header map's content with them).
	closeConn *bool
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		if w.closeConn != nil && *w.closeConn {
			w.Header().Set("Connection", "close")
		}
		w.status = code
		w.length = -1
		if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if w.length < 0 {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
	return n, err
}

// ReadFrom lets io.Copy hand the provider's body to the server's own copy
// path (no 32 KiB buffer per response) when the length is known; a
// streamed answer goes through Write, which flushes each piece.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if w.length < 0 || !ok {
		buf := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(buf)
		return io.CopyBuffer(writerOnly{w}, r, *buf)
	}
	n, err := rf.ReadFrom(r)
	w.n += n
	return n, err
}

// writerOnly hides ReadFrom so io.CopyBuffer uses the given buffer.
type writerOnly struct{ io.Writer }

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (w *countingWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// complete reports whether the whole announced body went out.
func (w *countingWriter) complete() bool { return w.length < 0 || w.n >= w.length }

// countingBody counts what the consumer sent. It is read only by the
// request's own goroutine (the provider leg writes the body before it
// reads the answer).
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
