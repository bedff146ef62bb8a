package natrouter

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

func TestALGSpecs(t *testing.T) {
	for _, tc := range []struct{ in, spec string }{
		{"off", "off"},
		{"kernel", "kernel"},
		{"broken", "broken:" + DefaultBrokenFaults},
		{"broken:none", "broken:none"},
		{"broken:", "broken:none"},
		{"broken:wrong-port+contact-not-via", "broken:contact-not-via+wrong-port"},
		{" broken:strip-rport,first-only ", "broken:first-only+strip-rport"},
	} {
		m, err := ParseALG(tc.in)
		if err != nil || m.Spec() != tc.spec {
			t.Errorf("ParseALG(%q) = %q, %v; want %q", tc.in, m.Spec(), err, tc.spec)
		}
		// The spec round-trips: status output can be fed back to set.
		if again, err := ParseALG(m.Spec()); err != nil || again.Spec() != m.Spec() {
			t.Errorf("%q does not round-trip: %q, %v", m.Spec(), again.Spec(), err)
		}
	}
	for _, bad := range []string{"", "on", "off:contact-not-via", "kernel:none", "broken:nope", "broken:none+wrong-port", "Broken"} {
		if _, err := ParseALG(bad); !errors.Is(err, ErrUnknownALG) {
			t.Errorf("ParseALG(%q) error %v, want ErrUnknownALG", bad, err)
		}
	}
	for _, m := range ALGModes() {
		if m.Summary == "" || m.program == nil {
			t.Errorf("mode %s incomplete", m.Name)
		}
		if _, err := os.Stat("../docs/alg/" + m.Name + ".md"); err != nil {
			t.Errorf("mode %s has no page in docs/alg/: %v", m.Name, err)
		}
	}
}

func algParams(t *testing.T, spec string) params {
	t.Helper()
	p := testParams(t, "port-restricted", 30*time.Second)
	alg, err := ParseALG(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.alg = alg
	return p
}

// udpDport5060 reports whether a rule matches UDP destination port 5060.
func udpDport5060(exprs []expr.Any) bool {
	proto, port := false, false
	for i, e := range exprs {
		if c, ok := e.(*expr.Cmp); ok && bytes.Equal(c.Data, []byte{17}) {
			proto = true
		}
		if pl, ok := e.(*expr.Payload); ok && pl.Base == expr.PayloadBaseTransportHeader && pl.Offset == 2 && pl.Len == 2 && i+1 < len(exprs) {
			if c, ok := exprs[i+1].(*expr.Cmp); ok && bytes.Equal(c.Data, []byte{0x13, 0xc4}) {
				port = true
			}
		}
	}
	return proto && port
}

func TestKernelALGRules(t *testing.T) {
	rs := buildRuleset(algParams(t, "kernel"))
	var helper *expr.CtHelper
	for _, o := range rs.objects {
		if o.Name == objSIPHelper && o.Type == nftables.ObjTypeCtHelper {
			helper, _ = o.Obj.(*expr.CtHelper)
		}
	}
	if helper == nil || helper.Name != "sip" || helper.L4Proto != 17 {
		t.Fatalf("no ct helper object of type sip for UDP: %+v", helper)
	}
	ch := rs.chain(chainALGHelper)
	if ch == nil || *ch.Hooknum != *nftables.ChainHookPrerouting {
		t.Fatalf("helper chain %+v: want a prerouting chain", ch)
	}
	rules := rulesIn(rs, chainALGHelper)
	if len(rules) != 1 || !udpDport5060(rules[0].exprs) {
		t.Fatalf("helper rules %+v", rules)
	}
	ref, ok := findExpr[*expr.Objref](rules[0].exprs)
	if !ok || ref.Name != objSIPHelper || ref.Type != int(nftables.ObjTypeCtHelper) {
		t.Errorf("rule does not set the helper: %+v", ref)
	}
	if !bytes.Equal(cmpData(rules[0].exprs)[0], ifnameBytes("eth0")) {
		t.Errorf("helper not limited to the LAN interface")
	}
	// Neither off nor broken attach the helper.
	for _, spec := range []string{"off", "broken:none"} {
		if rs := buildRuleset(algParams(t, spec)); rs.chain(chainALGHelper) != nil {
			t.Errorf("%s installs the kernel helper", spec)
		}
	}
}

func TestBrokenALGRules(t *testing.T) {
	rs := buildRuleset(algParams(t, "broken"))
	ch := rs.chain(chainALGQueue)
	if ch == nil || *ch.Hooknum != *nftables.ChainHookPostrouting || *ch.Priority <= *nftables.ChainPriorityNATSource {
		t.Fatalf("queue chain %+v: want postrouting after srcnat", ch)
	}
	rules := rulesIn(rs, chainALGQueue)
	if len(rules) != 1 || !udpDport5060(rules[0].exprs) {
		t.Fatalf("queue rules %+v", rules)
	}
	data := cmpData(rules[0].exprs)
	if !bytes.Equal(data[0], ifnameBytes("eth0")) || !bytes.Equal(data[1], ifnameBytes("eth1")) {
		t.Errorf("queue rule is not LAN→WAN: %q", data)
	}
	tg, ok := findExpr[*expr.Target](rules[0].exprs)
	if !ok || tg.Name != "NFQUEUE" || tg.Rev != 3 {
		t.Fatalf("target %+v", tg)
	}
	info, ok := tg.Info.(*xt.Unknown)
	if !ok || len(*info) != 8 {
		t.Fatalf("target info %#v", tg.Info)
	}
	b := []byte(*info)
	if binary.NativeEndian.Uint16(b[0:]) != algQueueNum || binary.NativeEndian.Uint16(b[2:]) != 1 ||
		binary.NativeEndian.Uint16(b[4:])&nfqueueFlagBypass == 0 {
		t.Errorf("NFQUEUE info %v: want queue %d, 1 queue, bypass", b, algQueueNum)
	}
	if rs := buildRuleset(algParams(t, "off")); rs.chain(chainALGQueue) != nil {
		t.Error("off installs the queue")
	}
}

func TestDetectKernelSIP(t *testing.T) {
	dir := t.TempDir()
	writeGz := func(name, content string) string {
		p := filepath.Join(dir, name)
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(content))
		zw.Close()
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	none := filepath.Join(dir, "absent")
	for _, tc := range []struct {
		name, config, procModules string
		ct, nat                   string
	}{
		{"built in", "CONFIG_NF_CONNTRACK_SIP=y\nCONFIG_NF_NAT_SIP=y\n", "", "built-in", "built-in"},
		{"modules", "CONFIG_NF_CONNTRACK_SIP=m\nCONFIG_NF_NAT_SIP=m\n", "", "module", "module"},
		{"loaded wins", "CONFIG_NF_CONNTRACK_SIP=m\nCONFIG_NF_NAT_SIP=m\n", "nf_nat_sip 16384 0 - Live 0x0\nnf_conntrack_sip 40960 1 nf_nat_sip, Live 0x0\n", "loaded", "loaded"},
		{"docker desktop like", "CONFIG_NF_CONNTRACK=y\n# CONFIG_NF_CONNTRACK_SIP is not set\n", "", "missing", "missing"},
		{"no nat part", "CONFIG_NF_CONNTRACK_SIP=y\n# CONFIG_NF_NAT_SIP is not set\n", "", "built-in", "missing"},
		{"nothing readable", "", "", "unknown", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := kernelSources{configGz: none, modulesDir: none, procModules: none, sysModule: none}
			if tc.config != "" {
				src.configGz = writeGz(strings.ReplaceAll(tc.name, " ", "_")+".gz", tc.config)
			}
			if tc.procModules != "" {
				src.procModules = filepath.Join(dir, "modules")
				if err := os.WriteFile(src.procModules, []byte(tc.procModules), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := detectKernelSIP(src)
			if s.ConntrackSIP != tc.ct || s.NATSIP != tc.nat || s.Evidence == "" {
				t.Errorf("got %+v, want conntrack %s nat %s", s, tc.ct, tc.nat)
			}
		})
	}
}

func TestALGStatusText(t *testing.T) {
	alg, err := ParseALG("broken:contact-not-via")
	if err != nil {
		t.Fatal(err)
	}
	r := &Router{alg: alg}
	var b bytes.Buffer
	r.algStatus().writeText(&b)
	if !strings.Contains(b.String(), "fault contact-not-via: rewrites Contact") {
		t.Errorf("status text:\n%s", b.String())
	}
	var nilStatus *ALGStatus
	nilStatus.writeText(&b) // older servers send no detail: no panic
}

func TestSIPProbeMessage(t *testing.T) {
	local := netip.MustParseAddrPort("192.168.1.61:5062")
	dst := netip.MustParseAddrPort("203.0.113.10:5060")
	for _, size := range []int{0, 600, 1473, 3000} {
		msg, err := sipProbeMessage(local, dst, size)
		if err != nil {
			t.Fatal(err)
		}
		if size >= 400 && len(msg) != size {
			t.Errorf("size %d: built %d bytes", size, len(msg))
		}
		if !strings.HasPrefix(string(msg), "OPTIONS sip:203.0.113.10:5060 SIP/2.0\r\n") || !strings.HasSuffix(string(msg), "Content-Length: 0\r\n\r\n") {
			t.Errorf("size %d: not an OPTIONS:\n%s", size, msg)
		}
		via := sipHeader(msg, "via")
		resp := []byte("SIP/2.0 200 OK\r\nVia: " + via + ";received=203.0.113.2;rport=5062\r\nContent-Length: 0\r\n\r\n")
		if status, v, ok := sipProbeAnswer(resp, msg); !ok || status != "SIP/2.0 200 OK" || !strings.Contains(v, "rport=5062") {
			t.Errorf("answer not recognised: %q %q %v", status, v, ok)
		}
		other := []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.61:5062;branch=z9hG4bK-other\r\n\r\n")
		if _, _, ok := sipProbeAnswer(other, msg); ok {
			t.Error("an answer to another request was taken")
		}
	}
	if _, err := sipProbeMessage(local, dst, MaxSIPProbeSize+1); err == nil {
		t.Error("oversized probe accepted")
	}
	if r := (SIPProbeResult{Status: "SIP/2.0 486 Busy Here"}); r.StatusCode() != 486 {
		t.Errorf("StatusCode %d", r.StatusCode())
	}
}

func TestKernelALGRefusal(t *testing.T) {
	for _, tc := range []struct {
		s    KernelSIPSupport
		fail bool
	}{
		{KernelSIPSupport{ConntrackSIP: "built-in", NATSIP: "built-in"}, false},
		{KernelSIPSupport{ConntrackSIP: "module", NATSIP: "loaded"}, false},
		// Unknown is let through: the install then tells.
		{KernelSIPSupport{ConntrackSIP: "unknown", NATSIP: "unknown"}, false},
		{KernelSIPSupport{ConntrackSIP: "missing", NATSIP: "missing", Evidence: "/proc/config.gz"}, true},
		{KernelSIPSupport{ConntrackSIP: "built-in", NATSIP: "missing", Evidence: "/proc/config.gz"}, true},
	} {
		err := kernelALGError(tc.s)
		if tc.fail != (err != nil) {
			t.Errorf("%+v: error %v", tc.s, err)
			continue
		}
		if err != nil && (!errors.Is(err, ErrKernelALG) || !strings.Contains(err.Error(), "nf_nat_sip missing") ||
			!strings.Contains(err.Error(), "broken:none")) {
			t.Errorf("unhelpful refusal: %v", err)
		}
	}
	if err := explainKernelInstall(fmt.Errorf("netlink: %w", unix.ENOENT)); !errors.Is(err, ErrKernelALG) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("ENOENT from the helper object not explained: %v", err)
	}
	if err := explainKernelInstall(unix.EPERM); errors.Is(err, ErrKernelALG) {
		t.Errorf("EPERM blamed on the kernel's SIP support: %v", err)
	}
}
