package faults

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Sleep waits d, or less if ctx ends first (the consumer gave up, or the SSP's
// upstream timeout closed the practice's connection), and then returns
// ctx's error so the caller stops instead of answering nobody.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrCannotReset is returned by Reset when w cannot hand over its connection
// (HTTP/2, or a wrapper that hides it). The caller then aborts the handler
// with panic(http.ErrAbortHandler), which resets an HTTP/2 stream.
var ErrCannotReset = errors.New("the response writer cannot hand over its connection")

// Reset closes the request's connection without answering, as a provider
// that crashes or a network that drops the call would: nothing is written,
// and on TCP the close is abortive (SO_LINGER 0), so the peer reads a
// connection reset rather than a clean end. A TLS connection is closed
// under its TLS layer, without a close_notify alert, for the same reason.
// Wrappers of w are looked through with Unwrap, as
// http.ResponseController does.
func Reset(w http.ResponseWriter) error {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCannotReset, err)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // best effort: a plain close still ends the call unanswered
	}
	return raw.Close()
}

// Act carries out d for a caller that has matched it: it waits d's delay,
// then lets answer write the status action in the caller's own shape, or
// closes the connection unanswered. It reports whether the request is
// finished (answered, reset, or the client gone during the delay), in which
// case the caller must not forward or handle it; a nil d, or a delay alone,
// leaves it to carry on. err is the context's error when the client left
// during the delay, or Reset's error; on ErrCannotReset the caller aborts
// with panic(http.ErrAbortHandler).
func Act(ctx context.Context, w http.ResponseWriter, d *Decision, answer func(Status)) (done bool, err error) {
	if d == nil {
		return false, nil
	}
	if err := Sleep(ctx, d.Delay); err != nil {
		return true, err
	}
	switch {
	case d.Status != nil:
		answer(*d.Status)
		return true, nil
	case d.Reset:
		return true, Reset(w)
	}
	return false, nil
}
