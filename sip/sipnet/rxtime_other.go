//go:build !linux

package sipnet

import (
	"net"
	"time"
)

// Elsewhere there is no arrival stamp: the queue-delay gate stays off.
func enableRxTime(*net.UDPConn) bool { return false }

func rxTime([]byte) (time.Time, bool) { return time.Time{}, false }
