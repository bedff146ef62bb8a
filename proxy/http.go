package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/siplab/siplab/ctl"
)

// Handler is the proxy's small JSON control API (the host CLI and the lab
// UI call it; bind it to a management address, never a lab network):
//
//	GET /v1/status               Status
//	GET /v1/settings             Settings
//	PUT /v1/settings/{name}      body: the value, plain ("ignore") or JSON ("\"ignore\"", true); "default" = the startup value
//	POST /v1/reset               every toggle back to its startup value → ResetResult
//
// Errors are {"error": "..."} with 400 for a bad value and 404 for an
// unknown setting, the ctl package's wire format.
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, p.Status())
	})
	mux.HandleFunc("GET /v1/settings", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, p.Settings())
	})
	mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
		s, changed := p.Reset()
		ctl.WriteJSON(w, http.StatusOK, ResetResult{Settings: s, Restored: changed})
	})
	mux.HandleFunc("PUT /v1/settings/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1024))
		if err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		value := strings.TrimSpace(string(body))
		var v any
		if json.Unmarshal([]byte(value), &v) == nil {
			switch x := v.(type) {
			case string:
				value = x
			case bool:
				value = "off"
				if x {
					value = "on"
				}
			}
		}
		s, err := p.Set(r.PathValue("name"), value)
		switch {
		case errors.Is(err, ErrUnknownSetting):
			ctl.WriteError(w, http.StatusNotFound, err)
		case err != nil:
			ctl.WriteError(w, http.StatusBadRequest, err)
		default:
			ctl.WriteJSON(w, http.StatusOK, s)
		}
	})
	return mux
}

// ResetResult answers POST /v1/reset.
type ResetResult struct {
	Settings Settings `json:"settings"`
	// Restored names the toggles that were not at their startup value.
	Restored []string `json:"restored"`
}
