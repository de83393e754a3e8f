//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

import "crypto/tls"

// alive cannot peek here without blocking: the connection is taken as open
// and silent; a read that fails on it is sent again, another request is
// answered with a 502.
func alive(*tls.Conn) bool { return true }
