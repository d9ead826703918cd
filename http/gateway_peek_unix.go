//go:build unix

package http

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUnusable reports whether the idle connection c may not carry another
// request: its peer has closed it (or reset it), or sent something while
// it was idle — nothing is due on a connection between an answer and the
// next request, and what comes then (TLS's close_notify before closing, a
// "408 Request Timeout") means the peer is done with it. A non-blocking
// peek; it costs one system call.
func peerUnusable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	unusable := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		for {
			_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			// Data, the end of the stream, or an error: all but "nothing yet".
			unusable = err != unix.EAGAIN && err != unix.EWOULDBLOCK
			return
		}
	})
	return err == nil && unusable
}
