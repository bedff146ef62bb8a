package capture

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// stunBytes builds a STUN message with pion/stun, the way the browser's
// and the gateway's stacks write them.
func stunBytes(t testing.TB, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// rawAttr adds an attribute by type and value (PRIORITY, USE-CANDIDATE …).
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

func xorAttr(t stun.AttrType, ap string) stun.Setter {
	a := netip.MustParseAddrPort(ap)
	return setterFunc(func(m *stun.Message) error {
		x := stun.XORMappedAddress{IP: net.IP(a.Addr().AsSlice()), Port: int(a.Port())}
		return x.AddToAs(m, t)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

func TestDecodeSTUN(t *testing.T) {
	tx := stun.NewTransactionIDSetter([stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	integrity := stun.NewShortTermIntegrity("gatewaypwd")
	cases := []struct {
		name string
		b    []byte
		want STUNMessage
	}{
		{"ICE check nominating", stunBytes(t, stun.BindingRequest, tx, stun.NewUsername("gw01:br02"),
			rawAttr{stun.AttrPriority, []byte{0x6e, 0, 0x1e, 0xff}}, rawAttr{stun.AttrICEControlling, make([]byte, 8)},
			rawAttr{stun.AttrUseCandidate, nil}, integrity, stun.Fingerprint),
			STUNMessage{Method: 1, Class: STUNRequest, Username: "gw01:br02", Priority: 0x6e001eff, UseCandidate: true, Controlling: true}},
		{"Binding success", stunBytes(t, stun.BindingSuccess, tx, xorAttr(stun.AttrXORMappedAddress, "203.0.113.9:50123"), stun.Fingerprint),
			STUNMessage{Method: 1, Class: STUNSuccess, Mapped: netip.MustParseAddrPort("203.0.113.9:50123")}},
		{"Allocate 401", stunBytes(t, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), tx, stun.CodeUnauthorized,
			stun.NewRealm("siplab"), stun.NewNonce("n1")),
			STUNMessage{Method: 3, Class: STUNError, ErrorCode: 401, ErrorReason: "Unauthorized"}},
		{"Allocate success", stunBytes(t, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), tx,
			xorAttr(stun.AttrXORRelayedAddress, "203.0.113.20:49152"), xorAttr(stun.AttrXORMappedAddress, "203.0.113.9:50123"),
			rawAttr{stun.AttrLifetime, []byte{0, 0, 0x02, 0x58}}),
			STUNMessage{Method: 3, Class: STUNSuccess, Relayed: netip.MustParseAddrPort("203.0.113.20:49152"),
				Mapped: netip.MustParseAddrPort("203.0.113.9:50123"), Lifetime: 600}},
		{"CreatePermission", stunBytes(t, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), tx,
			xorAttr(stun.AttrXORPeerAddress, "203.0.113.5:8443"), stun.NewUsername("dave")),
			STUNMessage{Method: 8, Class: STUNRequest, Username: "dave", Peer: netip.MustParseAddrPort("203.0.113.5:8443")}},
		{"ChannelBind", stunBytes(t, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), tx,
			rawAttr{stun.AttrChannelNumber, []byte{0x40, 0x01, 0, 0}}, xorAttr(stun.AttrXORPeerAddress, "203.0.113.5:8443")),
			STUNMessage{Method: 9, Class: STUNRequest, Channel: 0x4001, Peer: netip.MustParseAddrPort("203.0.113.5:8443")}},
		{"Refresh releasing", stunBytes(t, stun.NewType(stun.MethodRefresh, stun.ClassRequest), tx, rawAttr{stun.AttrLifetime, make([]byte, 4)}),
			STUNMessage{Method: 4, Class: STUNRequest, Lifetime: 0}},
		{"Send indication", stunBytes(t, stun.NewType(stun.MethodSend, stun.ClassIndication), tx,
			xorAttr(stun.AttrXORPeerAddress, "203.0.113.5:8443"), rawAttr{stun.AttrData, []byte("abcd")}),
			STUNMessage{Method: 6, Class: STUNIndication, Peer: netip.MustParseAddrPort("203.0.113.5:8443")}},
	}
	src, dst := netip.MustParseAddrPort("192.168.9.10:50000"), netip.MustParseAddrPort("203.0.113.5:8443")
	labels := []string{"Binding request", "Binding success", "Allocate 401 Unauthorized", "Allocate success",
		"CreatePermission request", "ChannelBind request", "Refresh request", "Send indication"}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := NewDecoder().Decode("router-w/lan", time.Unix(1, 0), frameUDP(t, src, dst, tc.b))
			if len(out) != 1 || out[0].Kind != KindSTUN || out[0].STUN == nil {
				t.Fatalf("decoded %+v, want one STUN message", out)
			}
			got := *out[0].STUN
			want := tc.want
			want.Transaction = "0102030405060708090a0b0c"
			if tc.want.Lifetime == 0 && tc.name != "Refresh releasing" {
				want.Lifetime = -1
			}
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if l := got.Label(); l != labels[i] {
				t.Errorf("label %q, want %q", l, labels[i])
			}
			if out[0].Kind.String() != "stun" || string(out[0].Payload) != string(tc.b) {
				t.Errorf("kind %s, payload %x", out[0].Kind, out[0].Payload)
			}
		})
	}
}

func TestDecodeChannelData(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.168.9.10:50000"), netip.MustParseAddrPort("203.0.113.20:3478")
	rtp := rtpPacket(1, 160, 7, 20)
	for _, pad := range []int{0, 3} { // padded to 4 bytes or not (RFC 8656 §12.5)
		b := append([]byte{0x40, 0x01, 0, byte(len(rtp))}, rtp...)
		b = append(b, make([]byte, pad)...)
		out := NewDecoder().Decode("router-w/lan", time.Unix(1, 0), frameUDP(t, src, dst, b))
		if len(out) != 1 || out[0].Kind != KindChannelData || out[0].STUN.Channel != 0x4001 || out[0].STUN.DataLen != len(rtp) {
			t.Fatalf("pad %d: %+v", pad, out)
		}
		if l := out[0].STUN.Label(); l != "ChannelData 0x4001" {
			t.Errorf("label %q", l)
		}
	}
}

// Things that resemble STUN or ChannelData but are not: nothing is
// decoded, nor taken for RTP.
func TestDecodeNotSTUN(t *testing.T) {
	good := stunBytes(t, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
	badCookie := append([]byte(nil), good...)
	badCookie[5] ^= 0xff
	longer := append(append([]byte(nil), good...), 0, 0, 0, 0)
	badFP := append([]byte(nil), good...)
	badFP[len(badFP)-1] ^= 0xff
	oddAttr := append([]byte(nil), good[:20]...)
	oddAttr[3] = 8
	oddAttr = append(oddAttr, 0x00, 0x06, 0x00, 0x40, 'a', 'b', 'c', 'd') // USERNAME claiming 64 bytes
	for name, b := range map[string][]byte{
		"short":                   good[:19],
		"wrong cookie":            badCookie,
		"length mismatch":         longer,
		"attribute past the end":  oddAttr,
		"ChannelData too short":   {0x40, 0x00, 0x00, 0x10, 1, 2},
		"ChannelData too long":    append([]byte{0x40, 0x00, 0x00, 0x01}, make([]byte, 8)...),
		"first bits not 00 or 01": append([]byte{0xc0}, good[1:]...),
	} {
		out := NewDecoder().Decode("x/y", time.Unix(1, 0), frameUDP(t, netip.MustParseAddrPort("192.168.9.10:1"), netip.MustParseAddrPort("203.0.113.5:2"), b))
		if len(out) != 0 {
			t.Errorf("%s: decoded %+v", name, out)
		}
	}
	// A broken FINGERPRINT is not checked: the capture shows what was sent
	// (the receiver drops it; that is the receiver's business to report).
	if _, ok := parseSTUN(badFP); !ok {
		t.Error("bad fingerprint: not decoded")
	}
}

func FuzzSTUN(f *testing.F) {
	f.Add(stunBytes(f, stun.BindingRequest, stun.NewUsername("a:b"), rawAttr{stun.AttrUseCandidate, nil}, stun.Fingerprint))
	f.Add(stunBytes(f, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), stun.CodeUnauthorized))
	f.Add([]byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, ok := parseSTUN(b); ok && (s.Label() == "" || s.Class == "") {
			t.Fatalf("STUN without a class: %+v", s)
		}
		if s, ok := parseChannelData(b); ok && (s.Channel < 0x4000 || s.DataLen > len(b)) {
			t.Fatalf("ChannelData %+v from %d bytes", s, len(b))
		}
		for _, p := range NewDecoder().Decode("f/z", time.Unix(0, 0), frameUDP(t, netip.MustParseAddrPort("192.168.9.10:1"), netip.MustParseAddrPort("203.0.113.5:2"), b)) {
			if (p.Kind == KindSTUN || p.Kind == KindChannelData) && p.STUN == nil {
				t.Fatalf("%s without its header", p.Kind)
			}
		}
	})
}
