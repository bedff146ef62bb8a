package mediarelay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
)

// maxPortTries bounds the search for a free pair. Random probing (rather
// than counting up from PortMin) keeps consecutive calls from getting
// predictable, adjacent ports — guessable relay ports invite RTP injection —
// and spreads them over the range.
const maxPortTries = 128

// bindPair binds RTP on a free even port and RTCP on the next port, both
// on ip and inside [portMin, portMax]: RFC 3550 §11 puts RTCP on RTP+1 and
// the SDP we write carries no a=rtcp, so the pair must be exactly that.
func bindPair(ip netip.Addr, portMin, portMax int) (rtpc, rtcpc *net.UDPConn, err error) {
	lo := firstEven(portMin)
	pairs := (portMax-lo-1)/2 + 1 // even ports p with p+1 <= max
	tries := min(maxPortTries, 2*pairs)
	start := rand.IntN(pairs)
	for k := range tries {
		// Random first, then walk: a nearly full small range is still
		// searched completely instead of by luck.
		idx := start
		if k >= tries/2 {
			idx = (start + k) % pairs
		} else if k > 0 {
			idx = rand.IntN(pairs)
		}
		p := lo + 2*idx
		a, err := listen(ip, p)
		if err != nil {
			if isAddrInUse(err) {
				continue
			}
			return nil, nil, err
		}
		b, err := listen(ip, p+1)
		if err != nil {
			a.Close()
			if isAddrInUse(err) {
				continue
			}
			return nil, nil, err
		}
		return a, b, nil
	}
	return nil, nil, fmt.Errorf("%w on %v in %d-%d after %d tries", ErrNoPorts, ip, portMin, portMax, tries)
}

func listen(ip netip.Addr, port int) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, fmt.Errorf("listen %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	return c, nil
}

// isAddrInUse tells a taken port (try another) from a real failure such as
// an address this host does not have (give up at once).
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
