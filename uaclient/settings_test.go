package uaclient

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sdpneg"
)

// rawPeer is a bare UDP socket standing in for the proxy, so tests see the
// exact bytes a phone writes and where they came from.
type rawPeer struct {
	*siptest.RawUDP
	t *testing.T
}

func newRawPeer(t *testing.T, ip string) *rawPeer {
	t.Helper()
	return &rawPeer{RawUDP: siptest.NewRawUDP(t, ip), t: t}
}

// aliceBehindRawProxy starts alice's phone on listen with a raw peer on
// peerIP as her outbound proxy: the test plays the server on the wire.
func aliceBehindRawProxy(t *testing.T, peerIP, listen string) (*rawPeer, *Phone) {
	t.Helper()
	peer := newRawPeer(t, peerIP)
	return peer, startPhone(t, Config{Name: "alice", Listen: listen, Proxy: peer.addr()})
}

func (r *rawPeer) addr() string { return r.Addr.String() }

// next returns the next SIP request (skipping keep-alives and responses)
// with its source address.
func (r *rawPeer) next(method sip.RequestMethod) (*sip.Request, netip.AddrPort) {
	r.t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(testTimeout)
	for {
		r.Conn.SetReadDeadline(deadline)
		n, src, err := r.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			r.t.Fatalf("waiting for %s: %v", method, err)
		}
		if strings.TrimSpace(string(buf[:n])) == "" {
			continue
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			r.t.Fatalf("phone sent unparsable message: %v\n%s", err, buf[:n])
		}
		if req, ok := msg.(*sip.Request); ok && req.Method == method {
			return req, src
		}
	}
}

// nextRaw returns the next datagram as is.
func (r *rawPeer) nextRaw() ([]byte, netip.AddrPort) {
	r.t.Helper()
	buf := make([]byte, 65535)
	r.Conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, src, err := r.Conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		r.t.Fatal(err)
	}
	return buf[:n], src
}

func (r *rawPeer) reply(req *sip.Request, to netip.AddrPort, code int, reason string, hdrs ...sip.Header) {
	r.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if _, err := r.Conn.WriteToUDPAddrPort([]byte(res.String()), to); err != nil {
		r.t.Fatal(err)
	}
}

func TestSettingsChangeWrittenAddresses(t *testing.T) {
	tests := []struct {
		name        string
		set         map[string]string
		wantRport   bool
		wantVia     string // "" = the phone's bound address
		wantContact string // host:port; "" = bound address
		wantSDP     string // c= address; "" = bound ip
		wantSDPPort int    // 0 = the real RTP port
	}{
		{name: "defaults", wantRport: true},
		{name: "rport off", set: map[string]string{"rport": "off"}, wantRport: false},
		{
			name:        "public addresses",
			set:         map[string]string{"via_addr": "203.0.113.2:5062", "contact_addr": "203.0.113.2", "sdp_addr": "203.0.113.2:40000"},
			wantRport:   true,
			wantVia:     "203.0.113.2:5062",
			wantContact: "203.0.113.2:PORT",
			wantSDP:     "203.0.113.2",
			wantSDPPort: 40000,
		},
		{
			name:        "back to local",
			set:         map[string]string{"via_addr": "203.0.113.9", "contact_addr": "local", "rport": "on"},
			wantRport:   true,
			wantVia:     "203.0.113.9:PORT",
			wantContact: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, phone := aliceBehindRawProxy(t, "127.0.0.4", "127.0.0.2:0")
			for k, v := range tt.set {
				if err := phone.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			local := phone.Addr()
			port := func(s string) string {
				if s == "" {
					return local.String()
				}
				return strings.ReplaceAll(s, "PORT", strconv.Itoa(int(local.Port())))
			}
			if _, err := phone.Call(testCtx(t), "bob"); err != nil {
				t.Fatal(err)
			}
			req, src := proxy.next(sip.INVITE)
			if src != local {
				t.Errorf("INVITE came from %s, want the listening socket %s", src, local)
			}
			via := req.Via()
			if _, has := via.Params.Get("rport"); has != tt.wantRport {
				t.Errorf("Via %q: rport present %v, want %v", via.Value(), has, tt.wantRport)
			}
			if got := via.SentBy(); got != port(tt.wantVia) {
				t.Errorf("Via sent-by %q, want %q", got, port(tt.wantVia))
			}
			ct := req.Contact()
			if got := ct.Address.HostPort(); got != port(tt.wantContact) {
				t.Errorf("Contact %q, want host:port %q", ct.Value(), port(tt.wantContact))
			}
			offer, err := sdpneg.Parse(req.Body())
			if err != nil {
				t.Fatal(err)
			}
			wantSDP := tt.wantSDP
			if wantSDP == "" {
				wantSDP = local.Addr().String()
			}
			if offer.Addr.String() != wantSDP {
				t.Errorf("SDP c= %s, want %s", offer.Addr, wantSDP)
			}
			st, _ := phone.CallStatus("")
			if tt.wantSDPPort != 0 && offer.Port != tt.wantSDPPort {
				t.Errorf("SDP port %d, want %d", offer.Port, tt.wantSDPPort)
			}
			if tt.wantSDPPort == 0 && st.LocalSDP != netip.AddrPortFrom(offer.Addr, uint16(offer.Port)).String() {
				t.Errorf("status local SDP %s, SDP says %s:%d", st.LocalSDP, offer.Addr, offer.Port)
			}
			// Same for REGISTER: the registrar's view of Contact and Via.
			go phone.Register(context.Background())
			reg, _ := proxy.next(sip.REGISTER)
			if got := reg.Contact().Address.HostPort(); got != port(tt.wantContact) {
				t.Errorf("REGISTER Contact %q, want %q", reg.Contact().Value(), port(tt.wantContact))
			}
			if _, has := reg.Via().Params.Get("rport"); has != tt.wantRport {
				t.Errorf("REGISTER Via %q: rport %v, want %v", reg.Via().Value(), has, tt.wantRport)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	p := startPhone(t, Config{Name: "x", Listen: "127.0.0.2:0"})
	tests := []struct {
		name, value string
		want        error
	}{
		{"nosuch", "on", ErrUnknownSetting},
		{"rport", "maybe", ErrBadValue},
		{"via_addr", "not-an-ip", ErrBadValue},
		{"via_addr", "0.0.0.0", ErrBadValue},
		{"sdp_addr", "1.2.3.4:0", ErrBadValue},
		{"keepalive", "stun", ErrBadValue},
		{"keepalive_interval", "10ms", ErrBadValue},
		{"auto_answer", "-1s", ErrBadValue},
		{"auto_answer", "soon", ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			before := p.Status().Settings
			err := p.Set(tt.name, tt.value)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if after := p.Status().Settings; !equalMaps(before, after) {
				t.Fatalf("failed Set changed settings: %v -> %v", before, after)
			}
		})
	}
	if _, err := New(Config{Listen: "127.0.0.2:0", Settings: map[string]string{"rport": "sometimes"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad initial setting: err %v, want ErrConfig", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestKeepaliveCRLF(t *testing.T) {
	proxy, phone := aliceBehindRawProxy(t, "127.0.0.4", "127.0.0.2:0")
	if err := phone.Set("keepalive", "crlf"); err != nil {
		t.Fatal(err)
	}
	b, src := proxy.nextRaw()
	if string(b) != "\r\n\r\n" {
		t.Fatalf("keep-alive %q, want CRLFCRLF", b)
	}
	if src != phone.Addr() {
		t.Fatalf("keep-alive from %s, want the SIP socket %s", src, phone.Addr())
	}
	// The status is written just after the datagram leaves.
	eventually(t, "keep-alive counted in status", func() bool {
		ka := phone.Status().Keepalive
		return ka.Sent >= 1 && ka.LastResult == "sent" && ka.Mode == "crlf"
	})
	if err := phone.Set("keepalive", "off"); err != nil {
		t.Fatal(err)
	}
}

func TestKeepaliveOptions(t *testing.T) {
	proxy, phone := aliceBehindRawProxy(t, "127.0.0.4", "127.0.0.2:0")
	if err := phone.Set("keepalive", "options"); err != nil {
		t.Fatal(err)
	}
	req, src := proxy.next(sip.OPTIONS)
	if src != phone.Addr() {
		t.Fatalf("OPTIONS from %s, want %s", src, phone.Addr())
	}
	proxy.reply(req, src, 200, "OK")
	eventually(t, "keep-alive result in status", func() bool {
		return phone.Status().Keepalive.LastResult == "200 OK"
	})
	phone.Set("keepalive", "off")
}
