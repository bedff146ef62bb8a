package media

import (
	"fmt"
	"net"
	"net/netip"
)

// evenPortTries bounds how often ListenRTP asks the kernel for another
// ephemeral port; half of them are even, so running out means the range is full.
const evenPortTries = 64

// ListenRTP binds the UDP socket a phone receives RTP on.
//
// ip is the local address to bind; the zero netip.Addr binds all addresses
// (but then the SDP address must be configured, since it cannot be derived).
// port 0 picks a free EVEN port, because RFC 3550 §11 puts RTP on an even
// port and RTCP on the next odd one and some peers and SBCs assume it; a
// fixed port binds exactly that port, odd or not, so the lab can show what
// happens. The result is a *net.UDPConn.
func ListenRTP(ip netip.Addr, port int) (net.PacketConn, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d out of range", ErrInvalidConfig, port)
	}
	addr := &net.UDPAddr{Port: port}
	if ip.IsValid() {
		addr.IP = ip.AsSlice()
		addr.Zone = ip.Zone()
	}
	if port != 0 {
		c, err := net.ListenUDP("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("media: listen rtp %v: %w", addr, err)
		}
		return c, nil
	}
	for range evenPortTries {
		c, err := net.ListenUDP("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("media: listen rtp %v: %w", addr, err)
		}
		if c.LocalAddr().(*net.UDPAddr).Port%2 == 0 {
			return c, nil
		}
		c.Close()
	}
	return nil, fmt.Errorf("%w on %v after %d tries", ErrNoEvenPort, ip, evenPortTries)
}
