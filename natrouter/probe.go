package natrouter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// The probe and echo pair make NAT behaviour observable without a shell in
// the image: the echo answers every datagram with the source address it saw
// (what STUN would report), from its main port and optionally also from a
// second port, so a probe can tell whether the NAT lets in a reply from a
// port it never sent to (filtering).

const (
	probePrefix = "siplab-probe "
	echoPrefix  = "siplab-echo "
)

// EchoReply is one answer the probe received.
type EchoReply struct {
	// From is the address the answer came from.
	From netip.AddrPort `json:"from"`
	// Seen is the source address the echo saw for the probe: the outside
	// address of the mapping when a NAT is in the way.
	Seen netip.AddrPort `json:"seen"`
	// Via is "main" or "alt" (the echo's second port).
	Via string `json:"via"`
}

// ProbeResult is the outcome of one probe.
type ProbeResult struct {
	Local   netip.AddrPort `json:"local"`
	Remote  netip.AddrPort `json:"remote"`
	Replies []EchoReply    `json:"replies"`
}

// ServeEcho answers probes on conn until ctx is done. If alt is not nil,
// every answer is also sent from alt.
func ServeEcho(ctx context.Context, conn, alt net.PacketConn, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	go func() {
		<-ctx.Done()
		conn.Close()
		if alt != nil {
			alt.Close()
		}
	}()
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("natrouter: echo read: %w", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, probePrefix) {
			continue
		}
		nonce := strings.TrimPrefix(msg, probePrefix)
		log.Info("probe", "from", from.String())
		if _, err := conn.WriteTo([]byte(fmt.Sprintf("%s%s seen %s via main", echoPrefix, nonce, from)), from); err != nil {
			log.Warn("echo reply failed", "err", err)
		}
		if alt != nil {
			if _, err := alt.WriteTo([]byte(fmt.Sprintf("%s%s seen %s via alt", echoPrefix, nonce, from)), from); err != nil {
				log.Warn("echo alt reply failed", "err", err)
			}
		}
	}
}

// Probe sends one probe from conn to dst and collects answers for wait. It
// waits the whole window because the interesting answer (from the echo's
// second port) may be the one that never arrives.
func Probe(ctx context.Context, conn *net.UDPConn, dst netip.AddrPort, wait time.Duration) (ProbeResult, error) {
	res := ProbeResult{Remote: dst, Replies: []EchoReply{}}
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		res.Local = la.AddrPort()
	}
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	if _, err := conn.WriteToUDPAddrPort([]byte(probePrefix+nonce), dst); err != nil {
		return res, fmt.Errorf("natrouter: send probe: %w", err)
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return res, nil
			}
			return res, fmt.Errorf("natrouter: read probe answer: %w", err)
		}
		r, ok := parseEcho(string(buf[:n]), nonce)
		if !ok {
			continue
		}
		r.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		res.Replies = append(res.Replies, r)
	}
}

func parseEcho(msg, nonce string) (EchoReply, bool) {
	// "siplab-echo <nonce> seen <addr:port> via <main|alt>"
	f := strings.Fields(msg)
	if len(f) != 6 || f[0]+" " != echoPrefix || f[1] != nonce || f[2] != "seen" || f[4] != "via" {
		return EchoReply{}, false
	}
	seen, err := netip.ParseAddrPort(f[3])
	if err != nil {
		return EchoReply{}, false
	}
	return EchoReply{Seen: seen, Via: f[5]}, true
}

// SetDefaultGateway points the default route of the caller's namespace at
// gw: a LAN host in the lab must reach the internet only through its site
// router, never through Docker's gateway.
func SetDefaultGateway(gw netip.Addr) error {
	if !gw.Is4() {
		return fmt.Errorf("%w: gateway %s is not IPv4", ErrBadConfig, gw)
	}
	route := &netlink.Route{Gw: gw.AsSlice()}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("natrouter: default route via %s: %w", gw, err)
	}
	return nil
}
