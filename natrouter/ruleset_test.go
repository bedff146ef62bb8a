package natrouter

// Rule-building table tests: no root, no kernel. They pin down what each
// preset and setting asks the kernel for.

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func testParams(t *testing.T, preset string, pinhole time.Duration) params {
	t.Helper()
	p, err := lookupPreset(preset)
	if err != nil {
		t.Fatal(err)
	}
	alg, err := lookupALG("off")
	if err != nil {
		t.Fatal(err)
	}
	return params{table: "siplab_nat", lanIf: "eth0", wanIf: "eth1",
		lan: netip.MustParsePrefix("192.168.1.0/24"), pinhole: pinhole, preset: p, alg: alg}
}

func rulesIn(rs *ruleset, chain string) []ruleSpec {
	var out []ruleSpec
	for _, r := range rs.rules {
		if r.chain == chain {
			out = append(out, r)
		}
	}
	return out
}

func findExpr[T expr.Any](exprs []expr.Any) (T, bool) {
	for _, e := range exprs {
		if v, ok := e.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// cmpData collects the data of every Cmp in a rule, to check what it matches.
func cmpData(exprs []expr.Any) [][]byte {
	var out [][]byte
	for _, e := range exprs {
		if c, ok := e.(*expr.Cmp); ok {
			out = append(out, c.Data)
		}
	}
	return out
}

func hasData(exprs []expr.Any, want []byte) bool {
	for _, d := range cmpData(exprs) {
		if bytes.Equal(d, want) {
			return true
		}
	}
	return false
}

func TestBuildRulesetPresets(t *testing.T) {
	cases := []struct {
		preset          string
		wantFullyRandom bool
		wantMapping     string
	}{
		{"port-restricted", false, EndpointIndependent},
		{"symmetric", true, AddressAndPortDependent},
	}
	for _, tc := range cases {
		t.Run(tc.preset, func(t *testing.T) {
			p := testParams(t, tc.preset, 30*time.Second)
			rs := buildRuleset(p)
			if p.preset.Mapping != tc.wantMapping || p.preset.Filtering != AddressAndPortDependent {
				t.Errorf("preset behaviour %s/%s", p.preset.Mapping, p.preset.Filtering)
			}
			post := rulesIn(rs, chainPostrouting)
			if len(post) != 1 {
				t.Fatalf("%d postrouting rules, want 1", len(post))
			}
			m, ok := findExpr[*expr.Masq](post[0].exprs)
			if !ok {
				t.Fatal("postrouting rule has no masquerade")
			}
			if m.FullyRandom != tc.wantFullyRandom || m.Random || m.Persistent {
				t.Errorf("masquerade %+v, want fully-random=%v", m, tc.wantFullyRandom)
			}
			// Only LAN-sourced packets leaving via the WAN are translated.
			if !hasData(post[0].exprs, ifnameBytes("eth1")) || hasData(post[0].exprs, ifnameBytes("eth0")) {
				t.Error("masquerade not bound to the WAN interface only")
			}
			if !hasData(post[0].exprs, []byte{192, 168, 1, 0}) {
				t.Error("masquerade not limited to the LAN subnet")
			}
			bw, _ := findExpr[*expr.Bitwise](post[0].exprs)
			if bw == nil || !bytes.Equal(bw.Mask, []byte{255, 255, 255, 0}) {
				t.Errorf("LAN mask %v", bw)
			}
		})
	}
}

func TestBuildRulesetForwardChain(t *testing.T) {
	rs := buildRuleset(testParams(t, "port-restricted", 30*time.Second))
	fwd := rs.chain(chainForward)
	if fwd == nil || fwd.Policy == nil || *fwd.Policy != nftables.ChainPolicyDrop {
		t.Fatalf("forward chain %+v must default to drop", fwd)
	}
	if fwd.Hooknum == nil || *fwd.Hooknum != *nftables.ChainHookForward {
		t.Error("forward chain not on the forward hook")
	}
	post := rs.chain(chainPostrouting)
	if post == nil || post.Type != nftables.ChainTypeNAT || *post.Priority != *nftables.ChainPriorityNATSource {
		t.Errorf("postrouting chain %+v", post)
	}

	rules := rulesIn(rs, chainForward)
	want := []struct {
		comment string
		verdict expr.VerdictKind
		none    bool // statement only, no verdict
		objref  string
	}{
		{"replies and related flows through open mappings", expr.VerdictAccept, false, ""},
		{"invalid packets", expr.VerdictDrop, false, ""},
		{"udp pinhole timeout on new outbound flows", 0, true, objPinhole},
		{"LAN to WAN", expr.VerdictAccept, false, ""},
		{"unsolicited WAN to LAN", expr.VerdictDrop, false, objUnsolicited},
	}
	if len(rules) != len(want) {
		t.Fatalf("%d forward rules, want %d", len(rules), len(want))
	}
	for i, w := range want {
		r := rules[i]
		if r.comment != w.comment {
			t.Errorf("rule %d is %q, want %q (order matters: the timeout must precede the accept)", i, r.comment, w.comment)
		}
		v, hasV := findExpr[*expr.Verdict](r.exprs)
		if w.none && hasV {
			t.Errorf("rule %q has verdict %v, want none", r.comment, v.Kind)
		}
		if !w.none && (!hasV || v.Kind != w.verdict) {
			t.Errorf("rule %q verdict %+v, want %v", r.comment, v, w.verdict)
		}
		o, hasO := findExpr[*expr.Objref](r.exprs)
		if (w.objref != "") != hasO || hasO && o.Name != w.objref {
			t.Errorf("rule %q objref %+v, want %q", r.comment, o, w.objref)
		}
	}
	// The pinhole applies to UDP only.
	if !hasData(rules[2].exprs, []byte{unix.IPPROTO_UDP}) {
		t.Error("pinhole rule not limited to UDP")
	}
	// Inbound is WAN→LAN.
	in := rules[4].exprs
	if cmpData(in)[0][0] != 'e' || !bytes.Equal(cmpData(in)[0], ifnameBytes("eth1")) || !bytes.Equal(cmpData(in)[1], ifnameBytes("eth0")) {
		t.Errorf("unsolicited rule matches %q", cmpData(in))
	}
}

func TestBuildRulesetPinholeObject(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 3 * time.Second, 20 * time.Second, DefaultPinhole, time.Hour} {
		rs := buildRuleset(testParams(t, "port-restricted", d))
		var ct *expr.CtTimeout
		for _, o := range rs.objects {
			if o.Name == objPinhole {
				if o.Type != nftables.ObjTypeCtTimeout {
					t.Fatalf("%s has type %v", objPinhole, o.Type)
				}
				ct = o.Obj.(*expr.CtTimeout)
			}
		}
		if ct == nil {
			t.Fatalf("no %s object", objPinhole)
		}
		secs := uint32(d / time.Second)
		if ct.L4Proto != unix.IPPROTO_UDP || ct.L3Proto != unix.NFPROTO_IPV4 {
			t.Errorf("ct timeout protocols %d/%d", ct.L3Proto, ct.L4Proto)
		}
		if ct.Policy[expr.CtStateUDPUNREPLIED] != secs || ct.Policy[expr.CtStateUDPREPLIED] != secs {
			t.Errorf("pinhole %s: policy %v, want both states %d", d, ct.Policy, secs)
		}
	}
}

func TestRegistries(t *testing.T) {
	for _, name := range []string{"port-restricted", "symmetric"} {
		if _, err := lookupPreset(name); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	// No preset may claim a behaviour it does not program: conntrack alone
	// filters address-and-port-dependently, anything looser needs the cone
	// DNAT chain.
	for _, p := range Presets() {
		if p.program == nil || p.Summary == "" {
			t.Errorf("preset %s incomplete", p.Name)
		}
		rs := buildRuleset(testParams(t, p.Name, 30*time.Second))
		hasDNAT := rs.chain(chainConeDNAT) != nil
		if (p.Filtering != AddressAndPortDependent) != hasDNAT {
			t.Errorf("preset %s claims %s filtering but programs cone DNAT=%v", p.Name, p.Filtering, hasDNAT)
		}
	}
	if _, err := lookupPreset("nat-of-the-future"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("unknown preset: %v", err)
	}
	if _, err := lookupALG("off"); err != nil {
		t.Error(err)
	}
	if _, err := lookupALG("telepathic"); !errors.Is(err, ErrUnknownALG) {
		t.Errorf("unknown ALG: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	lan := netip.MustParsePrefix("192.168.1.1/24")
	wan := netip.MustParsePrefix("203.0.113.2/24")
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"defaults", Config{LAN: lan, WAN: wan}, nil},
		{"missing lan", Config{WAN: wan}, ErrBadConfig},
		{"missing wan", Config{LAN: lan}, ErrBadConfig},
		{"ipv6 lan", Config{LAN: netip.MustParsePrefix("fd00::1/64"), WAN: wan}, ErrBadConfig},
		{"overlap", Config{LAN: lan, WAN: netip.MustParsePrefix("192.168.0.0/16")}, ErrBadConfig},
		{"unknown preset", Config{LAN: lan, WAN: wan, Preset: "fullcone"}, ErrUnknownPreset},
		{"unknown alg", Config{LAN: lan, WAN: wan, ALG: "magic"}, ErrUnknownALG},
		{"unknown alg fault", Config{LAN: lan, WAN: wan, ALG: "broken:magic"}, ErrUnknownALG},
		{"fractional pinhole", Config{LAN: lan, WAN: wan, Pinhole: 1500 * time.Millisecond}, ErrBadPinhole},
		{"negative pinhole", Config{LAN: lan, WAN: wan, Pinhole: -time.Second}, ErrBadPinhole},
		{"huge pinhole", Config{LAN: lan, WAN: wan, Pinhole: 48 * time.Hour}, ErrBadPinhole},
		{"symmetric 3s", Config{LAN: lan, WAN: wan, Preset: "symmetric", Pinhole: 3 * time.Second}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.withDefaults()
			err := c.validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMatchSelector(t *testing.T) {
	cases := []struct {
		sel, ip string
		want    bool
	}{
		{"192.168.1.0/24", "192.168.1.1", true},
		{"192.168.1.0/24", "192.168.2.1", false},
		{"192.168.1.1/24", "192.168.1.1", true},
		{"192.168.1.1/24", "192.168.1.50", false}, // host bits: exact address
		{"203.0.113.0/24", "203.0.113.2", true},
	}
	for _, tc := range cases {
		if got := matchSelector(netip.MustParsePrefix(tc.sel), netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("matchSelector(%s, %s) = %v", tc.sel, tc.ip, got)
		}
	}
}

func TestMappingsFromFlows(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	flow := func(src string, sport uint16, dst string, dport uint16, rdst string, rdport uint16) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward:   netlink.IPTuple{Protocol: 17, SrcIP: net.ParseIP(src), SrcPort: sport, DstIP: net.ParseIP(dst), DstPort: dport, Packets: 3},
			Reverse:   netlink.IPTuple{Protocol: 17, SrcIP: net.ParseIP(dst), SrcPort: dport, DstIP: net.ParseIP(rdst), DstPort: rdport, Packets: 2},
			TimeOut:   17,
			TimeStart: uint64(now.Add(-42 * time.Second).UnixNano()),
		}
	}
	flows := []*netlink.ConntrackFlow{
		flow("192.168.1.50", 5060, "203.0.113.10", 5060, "203.0.113.2", 61000),    // translated
		flow("203.0.113.10", 5060, "203.0.113.2", 5060, "203.0.113.10", 5060),     // inbound to router: not a mapping
		flow("192.168.1.50", 16000, "203.0.113.10", 20000, "192.168.1.50", 16000), // left untranslated
	}
	got := mappingsFromFlows(flows, netip.MustParsePrefix("192.168.1.0/24"), now)
	if len(got) != 2 {
		t.Fatalf("%d mappings, want 2: %+v", len(got), got)
	}
	m := got[0]
	if m.Inside.String() != "192.168.1.50:5060" || m.Outside.String() != "203.0.113.2:61000" ||
		m.Remote.String() != "203.0.113.10:5060" || !m.Translated || m.AgeSeconds != 42 ||
		m.ExpiresInSeconds != 17 || m.PacketsOut != 3 || m.PacketsIn != 2 || m.Proto != "udp" {
		t.Errorf("mapping %+v", m)
	}
	if got[1].Translated {
		t.Errorf("untranslated flow reported as translated: %+v", got[1])
	}

	// A remote opened it and the router DNATed it to a LAN host (cone
	// presets): the LAN side is in the reply tuple.
	in := &netlink.ConntrackFlow{
		Forward: netlink.IPTuple{Protocol: 17, SrcIP: net.ParseIP("203.0.113.10"), SrcPort: 5060, DstIP: net.ParseIP("203.0.113.2"), DstPort: 61000, Packets: 4},
		Reverse: netlink.IPTuple{Protocol: 17, SrcIP: net.ParseIP("192.168.1.50"), SrcPort: 5060, DstIP: net.ParseIP("203.0.113.10"), DstPort: 5060, Packets: 1},
		TimeOut: 9,
	}
	got = mappingsFromFlows([]*netlink.ConntrackFlow{in}, netip.MustParsePrefix("192.168.1.0/24"), now)
	if len(got) != 1 {
		t.Fatalf("inbound: %d mappings, want 1: %+v", len(got), got)
	}
	if m := got[0]; m.Inside.String() != "192.168.1.50:5060" || m.Outside.String() != "203.0.113.2:61000" ||
		m.Remote.String() != "203.0.113.10:5060" || !m.Translated || !m.Inbound || m.AgeSeconds != -1 ||
		m.ExpiresInSeconds != 9 || m.PacketsOut != 1 || m.PacketsIn != 4 {
		t.Errorf("inbound mapping %+v", m)
	}
}

func TestSettingsRequest(t *testing.T) {
	cases := []struct {
		in   SettingsRequest
		want Settings
		ok   bool
	}{
		{SettingsRequest{Preset: "symmetric"}, Settings{Preset: "symmetric"}, true},
		{SettingsRequest{Pinhole: "20s"}, Settings{Pinhole: 20 * time.Second}, true},
		{SettingsRequest{Pinhole: "2m", ALG: "off"}, Settings{Pinhole: 2 * time.Minute, ALG: "off"}, true},
		{SettingsRequest{Pinhole: "20"}, Settings{}, false},
		{SettingsRequest{Pinhole: "0s"}, Settings{}, false},
		{SettingsRequest{}, Settings{}, false},
	}
	for _, tc := range cases {
		got, err := tc.in.settings()
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("%+v -> %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseEcho(t *testing.T) {
	r, ok := parseEcho("siplab-echo abc seen 203.0.113.2:40000 via alt", "abc")
	if !ok || r.Seen.String() != "203.0.113.2:40000" || r.Via != "alt" {
		t.Errorf("parseEcho = %+v %v", r, ok)
	}
	for _, bad := range []string{
		"siplab-echo xyz seen 203.0.113.2:40000 via main", // other nonce: a stale answer
		"siplab-echo abc seen nowhere via main",
		"hello",
	} {
		if _, ok := parseEcho(bad, "abc"); ok {
			t.Errorf("parseEcho(%q) accepted", bad)
		}
	}
}

func TestBuildRulesetCone(t *testing.T) {
	for _, tc := range []struct {
		preset    string
		wantPeers bool
	}{{"full-cone", false}, {"restricted-cone", true}} {
		t.Run(tc.preset, func(t *testing.T) {
			rs := buildRuleset(testParams(t, tc.preset, 25*time.Second))
			sets := map[string]*nftables.Set{}
			for _, s := range rs.sets {
				sets[s.Name] = s
			}
			m := sets[setConeMap]
			if m == nil || !m.IsMap || !m.Dynamic || !m.HasTimeout || m.Timeout != 25*time.Second {
				t.Fatalf("cone map %+v: want a dynamic map timing out with the pinhole", m)
			}
			if m.KeyType.Bytes != 2 || m.DataType.Bytes != 8 {
				t.Errorf("cone map key %d bytes, data %d bytes; want port -> addr . port (2 -> 8)", m.KeyType.Bytes, m.DataType.Bytes)
			}
			if _, ok := sets[setConePeers]; ok != tc.wantPeers {
				t.Errorf("peer set present %v, want %v", ok, tc.wantPeers)
			}

			learn := rulesIn(rs, chainConeLearn)
			if len(learn) == 0 || rs.chain(chainConeLearn).Priority == nil || *rs.chain(chainConeLearn).Priority <= *nftables.ChainPriorityNATSource {
				t.Fatal("learning must run after masquerade, when the packet carries the mapped port")
			}
			ds, ok := findExpr[*expr.Dynset](learn[0].exprs)
			if !ok || ds.SetName != setConeMap || ds.Operation != unix.NFT_DYNSET_OP_UPDATE || ds.SrcRegData != reg32_04 {
				t.Errorf("learn dynset %+v", ds)
			}

			dnat := rulesIn(rs, chainConeDNAT)
			if len(dnat) != 1 {
				t.Fatalf("%d cone DNAT rules", len(dnat))
			}
			nat, ok := findExpr[*expr.NAT](dnat[0].exprs)
			if !ok || nat.Type != expr.NATTypeDestNAT || nat.RegAddrMin != reg32_04 || nat.RegProtoMin != reg32_05 {
				t.Errorf("dnat %+v: want address and port from the map lookup", nat)
			}
			var lookups []string
			for _, e := range dnat[0].exprs {
				if l, ok := e.(*expr.Lookup); ok {
					lookups = append(lookups, l.SetName)
				}
			}
			want := []string{setConeMap}
			if tc.wantPeers {
				want = []string{setConePeers, setConeMap}
			}
			if strings.Join(lookups, ",") != strings.Join(want, ",") {
				t.Errorf("dnat lookups %v, want %v", lookups, want)
			}

			fwd := rulesIn(rs, chainForward)
			if fwd[len(fwd)-1].comment != "unsolicited WAN to LAN" {
				t.Errorf("last forward rule %q: the unsolicited drop must stay last", fwd[len(fwd)-1].comment)
			}
			if fwd[len(fwd)-2].comment != "cone: accept DNATed inbound" {
				t.Errorf("cone accept not right before the drop: %q", fwd[len(fwd)-2].comment)
			}
		})
	}
}
