//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package proxy

import (
	"crypto/tls"
	"errors"
	"syscall"
)

// alive reports whether an idle provider connection is still open and
// silent: nothing may be waiting on it between answers, so a readable
// socket means the provider has closed it, sent a TLS close_notify, or
// sent bytes nobody asked for. One non-blocking peek, before each reuse.
func alive(conn *tls.Conn) bool {
	sc, ok := conn.NetConn().(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = rerr != nil && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true
	})
	return err == nil && open
}
