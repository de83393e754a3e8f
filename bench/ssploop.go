package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The "ssp-loop" reference (-references) is an experiment, not a product
// path: the SSP's whole handler (check chain, JWT, audit, goproxy, its
// provider leg, metrics and console) served by the bare connection loop of
// the "loop" reference instead of net/http's server, with the SSP's own
// consumer TLS. It measures what the SSP's own work costs on the cheapest
// Go serving loop, the figure the choice of replacing http.Server turns
// on. It serves only what the bench sends (requests without bodies, one at
// a time per connection); it keeps no timeouts, does not watch for the
// consumer leaving and has no head scanner, so it is cheaper than a
// product loop could be.

// runSSPLoop serves benchSSP's handler on the bare loop until ctx ends.
func runSSPLoop(ctx context.Context, o childOptions) error {
	srv, store, err := benchSSP(o, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := tls.Listen("tcp", o.listen, srv.TLSConfig())
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	h := srv.Handler()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go serveSSPLoop(conn.(*tls.Conn), h)
	}
}

func serveSSPLoop(conn *tls.Conn, h http.Handler) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Handshake(); err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	state := conn.ConnectionState()
	remote := conn.RemoteAddr().String()
	br := bufio.NewReaderSize(conn, 4<<10)
	bw := bufio.NewWriterSize(conn, 4<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil || req.ContentLength != 0 {
			return
		}
		req.TLS, req.RemoteAddr = &state, remote
		w := &loopWriter{bw: bw, header: http.Header{}, head: req.Method == http.MethodHead}
		h.ServeHTTP(w, req)
		if err := w.finish(); err != nil || w.close {
			return
		}
	}
}

// loopWriter is the least http.ResponseWriter the SSP's handler needs: a
// status line and headers, then the body framed by its Content-Length or
// chunked, and Flush.
type loopWriter struct {
	bw      *bufio.Writer
	header  http.Header
	status  int
	chunked bool
	head    bool
	close   bool
	err     error
}

func (w *loopWriter) Header() http.Header { return w.header }

func (w *loopWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.header.Get("Content-Length") == "" && !w.head && code != http.StatusNoContent && code != http.StatusNotModified {
		w.chunked = true
		w.header.Set("Transfer-Encoding", "chunked")
	}
	w.close = w.header.Get("Connection") == "close"
	w.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	w.header.Write(w.bw)
	_, w.err = w.bw.WriteString("\r\n")
}

func (w *loopWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.chunked && len(p) > 0 {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16) + "\r\n")
		n, err := w.bw.Write(p)
		if err == nil {
			_, err = w.bw.WriteString("\r\n")
		}
		w.err = err
		return n, err
	}
	n, err := w.bw.Write(p)
	w.err = err
	return n, err
}

// ReadFrom keeps io.Copy off a 32 KiB buffer per answer, as net/http's
// writer does.
func (w *loopWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		return io.Copy(writerOnly{w}, r)
	}
	n, err := w.bw.ReadFrom(r)
	if err != nil {
		w.err = err
	}
	return n, err
}

type writerOnly struct{ io.Writer }

func (w *loopWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
	}
}

// finish ends the answer (an empty one when the handler wrote nothing) and
// pushes it out.
func (w *loopWriter) finish() error {
	if w.status == 0 {
		w.header.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		w.bw.WriteString("0\r\n\r\n")
	}
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}
