//go:build !unix

package http

import "net"

// peerUnusable cannot look without blocking here: a connection the upstream
// closed while idle is found when the request meets it (502).
func peerUnusable(net.Conn) bool { return false }
