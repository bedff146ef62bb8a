//go:build linux

package sipnet

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"
)

// enableRxTime asks the kernel to stamp each datagram with its arrival
// time (SO_TIMESTAMPNS), from which the queue-delay gate reads how long a
// datagram waited in the socket before the daemon got to it.
func enableRxTime(c *net.UDPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// rxTime is the arrival time in a datagram's control messages.
func rxTime(oob []byte) (time.Time, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS || len(m.Data) != 16 {
			continue
		}
		// struct timespec on 64-bit Linux: two native int64s.
		sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
		nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
		return time.Unix(sec, nsec), true
	}
	return time.Time{}, false
}
