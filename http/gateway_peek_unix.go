//go:build unix

package http

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether the peer of c has closed it (or reset it): a
// non-blocking peek sees the end of the stream. Unread data, or nothing yet,
// means open. It costs one system call.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		for {
			n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			closed = (n == 0 && err == nil) || (err != nil && err != unix.EAGAIN && err != unix.EWOULDBLOCK)
			return
		}
	})
	return err == nil && closed
}
