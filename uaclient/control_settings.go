package uaclient

import (
	"context"
	"net/http"

	"github.com/siplab/siplab/internal/ctl"
)

// settingsRoutes: what the phone is and how it is set, its reset, and
// waiting for a state.
func (p *Phone) settingsRoutes() []route {
	return []route{
		{"GET /status", func(w http.ResponseWriter, r *http.Request) {
			ctl.WriteJSON(w, http.StatusOK, p.Status())
		}},
		{"GET /settings", func(w http.ResponseWriter, r *http.Request) {
			ctl.WriteJSON(w, http.StatusOK, p.Settings())
		}},
		{"POST /set", verb(func(_ context.Context, in SetRequest) ([]SettingInfo, error) {
			if err := p.Set(in.Name, in.Value); err != nil {
				return nil, err
			}
			return p.Settings(), nil
		})},
		{"POST /reset", func(w http.ResponseWriter, r *http.Request) {
			var in ResetRequest
			if r.ContentLength != 0 && !decode(w, r, &in) {
				return
			}
			if in.CallsOnly {
				ctl.WriteJSON(w, http.StatusOK, p.EndAll(r.Context()))
				return
			}
			res, err := p.Reset(r.Context())
			if err != nil {
				writeErr(w, err)
				return
			}
			ctl.WriteJSON(w, http.StatusOK, res)
		}},
		{"POST /wait", verb(p.waitFor)},
	}
}

// registrationRoutes: REGISTER and un-REGISTER now, answering with the
// registration's state after it.
func (p *Phone) registrationRoutes() []route {
	regStatus := func() RegStatus {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.regStatus()
	}
	return []route{
		{"POST /register", func(w http.ResponseWriter, r *http.Request) {
			err := p.Register(r.Context())
			st := regStatus()
			if err != nil {
				writeErr(w, err)
				return
			}
			ctl.WriteJSON(w, http.StatusOK, st)
		}},
		{"POST /unregister", func(w http.ResponseWriter, r *http.Request) {
			if err := p.Unregister(r.Context()); err != nil {
				writeErr(w, err)
				return
			}
			ctl.WriteJSON(w, http.StatusOK, regStatus())
		}},
	}
}
