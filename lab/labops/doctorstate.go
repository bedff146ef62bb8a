package labops

import (
	"context"
	"encoding/json"
	"time"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/trace/doctor"
	"github.com/siplab/siplab/uaclient"
)

// DoctorState reads what the running lab says about itself for the
// doctor's state rules; ok is false when no lab is up (a copied captures
// folder).
func DoctorState(ctx context.Context, r *labctl.Runner) (doctor.LabState, bool) {
	var st doctor.LabState
	nodes, err := r.Nodes(ctx)
	if err != nil || len(nodes) == 0 {
		return st, false
	}
	// A phone sits behind the router it shares a LAN with.
	routerOn := map[string]string{}
	for _, n := range nodes {
		if n.Role == "router" {
			for net := range n.Addresses {
				if net != "internet" {
					routerOn[net] = n.Name
				}
			}
		}
	}
	for _, n := range nodes {
		if !n.Running || n.Binary == "" {
			continue
		}
		var raw json.RawMessage
		if err := r.Status(ctx, n, &raw); err != nil {
			continue
		}
		switch n.Role {
		case "phone":
			var doc uaclient.Status
			if json.Unmarshal(raw, &doc) != nil {
				continue
			}
			p := doctor.PhoneState{Name: n.Name, RegState: string(doc.Registration.State), RegError: doc.Registration.Error, Settings: doc.Settings}
			for net := range n.Addresses {
				if r, ok := routerOn[net]; ok {
					p.Router = r
				}
			}
			st.Phones = append(st.Phones, p)
		case "router":
			var doc natrouter.Status
			if json.Unmarshal(raw, &doc) == nil {
				rs := doctor.RouterState{Name: n.Name, Pinhole: doc.Pinhole(), Preset: doc.Preset.Name, ALG: doc.ALG,
					WAN: n.Addresses["internet"], Outside: map[string]bool{}}
				for _, m := range doc.Mappings {
					if m.Proto == "udp" && m.Translated {
						rs.Outside[m.Outside.String()] = true
					}
				}
				st.Routers = append(st.Routers, rs)
			}
		case "registrar":
			var doc struct {
				Registrations []location.Binding `json:"registrations"`
			}
			if json.Unmarshal(raw, &doc) == nil {
				for _, b := range doc.Registrations {
					st.Bindings = append(st.Bindings, doctor.BindingState{AOR: b.AOR, Source: b.Source.String(), Transport: b.Transport})
				}
			}
		case "proxy":
			var doc proxy.Status
			if json.Unmarshal(raw, &doc) == nil && n.Addresses["internet"] != "" {
				st.ProxyAddr = n.Addresses["internet"] + ":5060"
				st.ProxyRport, _ = doc.Settings.Get("rport")
			}
		case "sbc":
			var doc sbc.Status
			if json.Unmarshal(raw, &doc) == nil {
				st.SBCAddr = doc.Access
				var s sbc.Settings
				if s.Set(sbc.SettingKeepaliveInterval, doc.Settings[sbc.SettingKeepaliveInterval]) == nil {
					st.SBCKeepalive = s.KeepaliveInterval
				}
				for _, w := range doc.WebRTC {
					st.WebRTC = append(st.WebRTC, WebRTCState(w, time.Now()))
				}
			}
		}
	}
	return st, true
}

// WebRTCState is a browser call at the SBC's gateway (sbc status
// "webrtc") as the doctor's state-ice rule reads it, at time now.
func WebRTCState(w webrtcgw.Stats, now time.Time) doctor.WebRTCState {
	return doctor.WebRTCState{Name: w.Name, ICE: w.ICE, Age: now.Sub(w.Created),
		Local: w.LocalCandidates, Remote: w.RemoteCandidates, SelectedPair: w.SelectedPair, FromBrowser: w.ToCore.Packets}
}

// StateFindings runs the doctor's state rules against the lab if one is up.
func StateFindings(ctx context.Context, r *labctl.Runner) ([]doctor.Finding, bool) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, ok := DoctorState(ctx, r)
	if !ok {
		return nil, false
	}
	return doctor.CheckState(st), true
}
