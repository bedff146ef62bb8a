package natrouter

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The kernel ALG: Linux's own SIP helper (nf_conntrack_sip tracks, nf_nat_sip
// rewrites) attached explicitly to the site's SIP flows. Since Linux 4.7
// helpers are not attached automatically, so without this rule the kernel
// never looks inside SIP even though the modules are there.
const (
	chainALGHelper = "alg_helper"
	objSIPHelper   = "sip_helper"
	// sipPort is where phones and servers talk SIP in the lab.
	sipPort = 5060
)

func init() {
	registerALG(ALGMode{
		Name: "kernel",
		Summary: "Linux nf_nat_sip (ct helper \"sip\" on UDP 5060 from the LAN): rewrites Via, Contact, SDP o=/c= " +
			"and Content-Length, leaves Call-ID/From/To and the m= port, opens RTP expectations",
		program: programKernelALG,
		check:   checkKernelALG,
	})
}

func programKernelALG(rs *ruleset, p params) {
	rs.objects = append(rs.objects, &nftables.NamedObj{
		Table: rs.table,
		Name:  objSIPHelper,
		Type:  nftables.ObjTypeCtHelper,
		Obj: &expr.CtHelper{
			Name:    "sip",
			L3Proto: unix.NFPROTO_IPV4,
			L4Proto: unix.IPPROTO_UDP,
		},
	})
	rs.addChain(&nftables.Chain{
		Name:     chainALGHelper,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityFilter,
	})
	// A helper can only be attached before conntrack confirms the flow, so
	// this sits in prerouting, in the path of the flow's first packet.
	rs.addRule(chainALGHelper, "kernel SIP ALG: nf_conntrack_sip/nf_nat_sip on SIP from the LAN",
		iifname(p.lanIf), l4proto(unix.IPPROTO_UDP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{sipPort >> 8, sipPort & 0xff}},
		&expr.Objref{Type: int(nftables.ObjTypeCtHelper), Name: objSIPHelper},
	)
}

// KernelSIPSupport says whether this kernel has the SIP helper and its NAT
// part, and how that was found out.
type KernelSIPSupport struct {
	// ConntrackSIP and NATSIP are "built-in", "module", "loaded", "missing"
	// or "unknown".
	ConntrackSIP string `json:"conntrack_sip"`
	NATSIP       string `json:"nat_sip"`
	Evidence     string `json:"evidence"`
}

// kernelSources are where the answer may be found; tests point them
// elsewhere.
type kernelSources struct {
	configGz, modulesDir, procModules, sysModule string
}

func defaultKernelSources() kernelSources {
	var u unix.Utsname
	release := ""
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	return kernelSources{
		configGz:    "/proc/config.gz",
		modulesDir:  "/lib/modules/" + release,
		procModules: "/proc/modules",
		sysModule:   "/sys/module",
	}
}

// DetectKernelSIP looks for nf_conntrack_sip and nf_nat_sip on this host.
// The kernel does not change under a running router, so the answer (which
// reads /proc/config.gz) is computed once.
func DetectKernelSIP() KernelSIPSupport { return detectOnce() }

var detectOnce = sync.OnceValue(func() KernelSIPSupport { return detectKernelSIP(defaultKernelSources()) })

func detectKernelSIP(src kernelSources) KernelSIPSupport {
	s := KernelSIPSupport{ConntrackSIP: "unknown", NATSIP: "unknown"}
	var evidence []string
	set := func(field *string, v, why string) {
		if *field == "unknown" {
			*field = v
			evidence = append(evidence, why)
		}
	}
	// Loaded modules first: the most direct proof.
	if b, err := os.ReadFile(src.procModules); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			switch strings.Fields(line + " x")[0] {
			case "nf_conntrack_sip":
				set(&s.ConntrackSIP, "loaded", src.procModules)
			case "nf_nat_sip":
				set(&s.NATSIP, "loaded", src.procModules)
			}
		}
	}
	// /proc/config.gz is the kernel's own build configuration, readable
	// inside containers too.
	if f, err := os.Open(src.configGz); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			cfg := map[string]string{}
			sc := bufio.NewScanner(io.LimitReader(zr, 4<<20))
			for sc.Scan() {
				line := sc.Text()
				if k, v, ok := strings.Cut(line, "="); ok {
					cfg[k] = v
				}
			}
			for _, c := range []struct {
				opt   string
				field *string
			}{{"CONFIG_NF_CONNTRACK_SIP", &s.ConntrackSIP}, {"CONFIG_NF_NAT_SIP", &s.NATSIP}} {
				switch cfg[c.opt] {
				case "y":
					set(c.field, "built-in", src.configGz+": "+c.opt+"=y")
				case "m":
					set(c.field, "module", src.configGz+": "+c.opt+"=m")
				default:
					if sc.Err() == nil && len(cfg) > 0 {
						set(c.field, "missing", src.configGz+": "+c.opt+" is not set")
					}
				}
			}
		}
	}
	// modules.builtin / modules.dep exist on hosts, rarely in containers.
	for _, f := range []struct{ file, state string }{{"modules.builtin", "built-in"}, {"modules.dep", "module"}} {
		b, err := os.ReadFile(src.modulesDir + "/" + f.file)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte("/nf_conntrack_sip.ko")) {
			set(&s.ConntrackSIP, f.state, src.modulesDir+"/"+f.file)
		}
		if bytes.Contains(b, []byte("/nf_nat_sip.ko")) {
			set(&s.NATSIP, f.state, src.modulesDir+"/"+f.file)
		}
	}
	// Built-in code with parameters shows up here (nf_conntrack_sip has
	// sip_timeout and ports; nf_nat_sip has none, so its absence says
	// nothing).
	if _, err := os.Stat(src.sysModule + "/nf_conntrack_sip"); err == nil {
		set(&s.ConntrackSIP, "built-in", src.sysModule+"/nf_conntrack_sip")
	}
	s.Evidence = strings.Join(evidence, "; ")
	if s.Evidence == "" {
		s.Evidence = "no kernel config or module list readable"
	}
	return s
}

// checkKernelALG refuses the kernel mode when the host's kernel is known to
// lack the SIP helper or its NAT part. "unknown" is let through: the
// install itself then tells (the ct helper object fails without the
// helper).
func checkKernelALG() error { return kernelALGError(DetectKernelSIP()) }

func kernelALGError(s KernelSIPSupport) error {
	if s.ConntrackSIP == "missing" || s.NATSIP == "missing" {
		return fmt.Errorf("%w: this kernel has no SIP ALG (nf_conntrack_sip %s, nf_nat_sip %s; %s): "+
			"Docker Desktop and some cloud kernels ship without it; use \"broken:none\" for a userspace ALG that rewrites correctly",
			ErrKernelALG, s.ConntrackSIP, s.NATSIP, s.Evidence)
	}
	return nil
}

// explainKernelInstall turns the kernel's refusal of the helper object into
// something people can act on.
func explainKernelInstall(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EAFNOSUPPORT) {
		s := DetectKernelSIP()
		return fmt.Errorf("%w: the kernel refused the \"sip\" ct helper (nf_conntrack_sip %s, nf_nat_sip %s; %s): %w",
			ErrKernelALG, s.ConntrackSIP, s.NATSIP, s.Evidence, err)
	}
	return err
}
