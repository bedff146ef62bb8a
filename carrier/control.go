package carrier

import (
	"context"
	"errors"
	"net/http"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/uaclient"
)

// CallRequest is the carrier's call verb: callee and calling number.
type CallRequest struct {
	Callee string `json:"callee"`
	From   string `json:"from,omitempty"`
}

// Handler serves the control API: status, call and ping are the carrier's;
// every other path (answer, hangup, reject, wait, options, dtmf, set, ...)
// is the phone engine's own API, so the carrier has no second copy of it.
func (c *Carrier) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if err := ctl.Decode(r, &in); err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		call, err := c.Call(r.Context(), in.Callee, in.From)
		if err != nil {
			status := http.StatusBadGateway
			switch {
			case errors.Is(err, ErrNotE164), errors.Is(err, uaclient.ErrBadTarget):
				status = http.StatusBadRequest
			case errors.Is(err, uaclient.ErrClosed):
				status = http.StatusServiceUnavailable
			}
			ctl.WriteError(w, status, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, call.Status())
	})
	mux.HandleFunc("POST /ping", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, c.Ping(r.Context()))
	})
	mux.Handle("/", c.phone.Handler())
	return mux
}

// Control is a typed client of a carrier's control socket; Phone reaches
// the phone-engine verbs on the same socket.
type Control struct {
	ctl.Client
	Phone *uaclient.Control
}

// NewControl returns a client for the carrier serving socket.
func NewControl(socket string) *Control {
	return &Control{Client: ctl.Client{Socket: socket}, Phone: uaclient.NewControl(socket)}
}

func (c *Control) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.Get(ctx, "/status", &st)
}

// Call places an outbound call to callee with from as the calling number
// ("" = the carrier's default).
func (c *Control) Call(ctx context.Context, callee, from string) (uaclient.CallStatus, error) {
	var st uaclient.CallStatus
	return st, c.Post(ctx, "/call", CallRequest{Callee: callee, From: from}, &st)
}

// Ping sends an OPTIONS to the peer now.
func (c *Control) Ping(ctx context.Context) (PeerStatus, error) {
	var st PeerStatus
	return st, c.Post(ctx, "/ping", nil, &st)
}
