package sbc

import (
	"net/http"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/sip/guard"
)

// SetRequest is the body of POST /set.
type SetRequest = ctl.SetRequest

// UnblockRequest is the body of POST /unblock.
type UnblockRequest = ctl.UnblockRequest

// UnblockResult says whether a block was lifted.
type UnblockResult = ctl.UnblockResult

// Handler serves the control API (package ctl, on a unix socket):
//
//	GET  /status    Status
//	GET  /settings  map of setting -> value
//	POST /set       {"name":..., "value":...} -> settings
//	POST /unblock   {"source":"ip"} -> UnblockResult
//	POST /reset     -> ResetResult (calls, registrations, blocks, settings)
func (s *SBC) Handler() http.Handler {
	mux := ctl.NewMux(s.Status, func() map[string]string { return s.Settings().All() }, s.Reset)
	mux.HandleFunc("POST /set", ctl.SetHandler(func(name, value string) (map[string]string, error) {
		st, err := s.Set(name, value)
		if err != nil {
			return nil, err
		}
		return st.All(), nil
	}, nil))
	mux.HandleFunc("POST /unblock", guard.UnblockHandler("sbc", s.Unblock))
	return mux
}
