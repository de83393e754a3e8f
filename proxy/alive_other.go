//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

import "crypto/tls"

// alive cannot peek here without blocking: the connection is taken as open,
// and a request that fails on it is answered with a 502.
func alive(*tls.Conn) bool { return true }
