package doctor

import (
	"fmt"
	"sort"
	"time"
)

// LabState is what the running lab says about itself (`siplab status
// -json`): the settings that decide whether a call can work before any
// packet is sent. Captures show what happened; state shows what is about
// to — a pinhole shorter than the keep-alive interval fails the *next*
// inbound call, which no capture holds yet.
type LabState struct {
	Phones  []PhoneState
	Routers []RouterState
	// ProxyAddr is the proxy's public SIP address and ProxyRport its rport
	// setting (honour, ignore, force); empty when the proxy is not up.
	ProxyAddr, ProxyRport string
	// SBCAddr is the SBC's public SIP address and SBCKeepalive its OPTIONS
	// ping interval (0 = off); empty/0 when there is no SBC.
	SBCAddr      string
	SBCKeepalive time.Duration
	// Bindings are the registrar's registrations (rule_dead_mapping.go).
	Bindings []BindingState
	// WebRTC are the browser calls at the SBC's media gateway (rule_ice.go).
	WebRTC []WebRTCState
}

// PhoneState is one phone's registration and NAT settings.
type PhoneState struct {
	Name string
	// Router is the site router the phone sits behind ("" if none).
	Router   string
	RegState string // registered, failed, ...
	RegError string
	// Settings are the phone's live settings by name (uaclient get).
	Settings map[string]string
}

// RouterState is one NAT router's behaviour.
type RouterState struct {
	Name    string
	Pinhole time.Duration
	Preset  string
	ALG     string
	// WAN is the router's public IP; Outside the public ip:port of each
	// UDP mapping it holds now (nil = unknown).
	WAN     string
	Outside map[string]bool
}

// CheckState runs the state rules, findings sorted errors first.
func CheckState(st LabState) []Finding {
	routers := map[string]RouterState{}
	for _, r := range st.Routers {
		routers[r.Name] = r
	}
	var out []Finding
	for _, p := range st.Phones {
		out = append(out, registrationState(p)...)
		out = append(out, keepaliveVsPinhole(p, routers[p.Router], st)...)
		out = append(out, viaLie(p, st)...)
	}
	out = append(out, deadMapping(st)...)
	for _, w := range st.WebRTC {
		out = append(out, iceFailed(w)...)
	}
	for _, r := range st.Routers {
		if r.ALG != "" && r.ALG != "off" {
			out = append(out, Finding{
				Rule: "state-alg", Severity: Warning,
				Summary:  fmt.Sprintf("%s has a SIP ALG on (%s): it rewrites SIP payloads on the way through", r.Name, r.ALG),
				Fix:      fmt.Sprintf("siplab set %s alg off (the field rule: turn SIP ALG off first)", r.Name),
				Evidence: []Evidence{{Iface: r.Name + " (status)", What: "alg " + r.ALG}},
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity > out[j].Severity })
	return out
}

func registrationState(p PhoneState) []Finding {
	if p.RegState == "" || p.RegState == "registered" || p.Settings["register"] == "off" {
		return nil
	}
	what := "registration " + p.RegState
	if p.RegError != "" {
		what += ": " + p.RegError
	}
	return []Finding{{
		Rule: "state-registration", Severity: Error,
		Summary:  fmt.Sprintf("%s is not registered: calls to it get 404/480", p.Name),
		Fix:      fmt.Sprintf("siplab exec %s status, then siplab doctor on its REGISTERs (wrong password? lost responses?)", p.Name),
		Evidence: []Evidence{{Iface: p.Name + " (status)", What: what}},
	}}
}

// keepaliveVsPinhole: the NAT mapping of an idle phone lapses after the
// router's pinhole timeout; something must send through it more often —
// the phone's keep-alives, its re-REGISTERs, or the SBC's pings.
func keepaliveVsPinhole(p PhoneState, r RouterState, st LabState) []Finding {
	if r.Name == "" || r.Pinhole <= 0 || p.RegState != "registered" {
		return nil
	}
	viaSBC := st.SBCAddr != "" && p.Settings["proxy"] == st.SBCAddr
	if viaSBC && st.SBCKeepalive > 0 && st.SBCKeepalive < r.Pinhole {
		return nil // the SBC's OPTIONS pings hold the mapping
	}
	mode := p.Settings["keepalive"]
	interval, err := time.ParseDuration(p.Settings["keepalive_interval"])
	if mode != "" && mode != "off" && err == nil && interval > 0 && interval < r.Pinhole {
		return nil
	}
	held := "keepalive " + mode
	if mode != "" && mode != "off" {
		held += " every " + p.Settings["keepalive_interval"]
	}
	if viaSBC {
		held += fmt.Sprintf(", SBC pings every %s", st.SBCKeepalive)
	}
	return []Finding{{
		Rule: "state-pinhole", Severity: Warning,
		Summary: fmt.Sprintf("%s's NAT mapping at %s lapses after %s idle, and nothing refreshes it sooner: inbound calls will stop reaching %s", p.Name, r.Name, r.Pinhole, p.Name),
		Note:    "re-REGISTERs refresh the mapping too, but only at about half the registration's expiry",
		Fix:     fmt.Sprintf("siplab set %s keepalive crlf and keepalive_interval below %s, or put it behind the SBC (its pings)", p.Name, r.Pinhole),
		Evidence: []Evidence{
			{Iface: r.Name + " (status)", What: fmt.Sprintf("pinhole %s", r.Pinhole)},
			{Iface: p.Name + " (status)", What: held},
		},
	}}
}

// viaLie: without rport the written Via (a private address) is where the
// proxy answers, unless it forces rport.
func viaLie(p PhoneState, st LabState) []Finding {
	if p.Router == "" || st.ProxyAddr == "" || p.Settings["proxy"] != st.ProxyAddr || p.Settings["rport"] != "off" || st.ProxyRport == "force" {
		return nil
	}
	return []Finding{{
		Rule: "state-via", Severity: Error,
		Summary: fmt.Sprintf("%s sends no rport and the proxy (rport %s) answers to the Via as written: a private address behind %s, so responses are lost", p.Name, st.ProxyRport, p.Router),
		Fix:     fmt.Sprintf("siplab set %s rport on, or siplab set proxy rport force", p.Name),
		Evidence: []Evidence{
			{Iface: p.Name + " (status)", What: "rport off"},
			{Iface: "proxy (status)", What: "rport " + st.ProxyRport},
		},
	}}
}
