package natrouter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/ctl"
)

// DefaultSocket is where the daemon serves its control API (package ctl).
// A scratch image has no shell, so people reach it with `docker exec <ctr>
// /natrouter ...`, whose subcommands are clients of this socket.
const DefaultSocket = "/run/siplab/natrouter.sock"

// SettingsRequest is the wire form of Settings (POST /set).
type SettingsRequest struct {
	Preset  string `json:"preset,omitempty"`
	Pinhole string `json:"pinhole,omitempty"` // a Go duration: "20s"
	ALG     string `json:"alg,omitempty"`
}

// SetResult answers a settings change, a reset or a flush.
type SetResult struct {
	Flushed int `json:"flushed"`
	// Dropped are the mappings that existed before the flush: each
	// inside host gets a new public port with its next packet, and
	// anything registered at the old one is unreachable until then.
	Dropped []Mapping `json:"dropped,omitempty"`
	Status  Status    `json:"status"`
}

// ControlHandler is the control API in the ctl wire format:
//
//	GET  /status    -> Status
//	POST /set       SettingsRequest -> SetResult (reprograms and flushes)
//	POST /flush     -> SetResult
//	POST /reset     -> SetResult (startup preset, pinhole and ALG; flushes)
func ControlHandler(r *Router) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, req *http.Request) {
		st, err := r.Status(req.Context())
		if err != nil {
			ctl.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, req *http.Request) {
		var sr SettingsRequest
		if err := ctl.Decode(req, &sr); err != nil {
			ctl.WriteError(w, http.StatusBadRequest, fmt.Errorf("bad settings body: %w", err))
			return
		}
		s, err := sr.withDefaults(r.Initial()).settings()
		if err != nil {
			ctl.WriteError(w, http.StatusBadRequest, err)
			return
		}
		flushing(w, req.Context(), r, func(ctx context.Context) (int, error) { return r.Set(ctx, s) })
	})
	mux.HandleFunc("POST /flush", func(w http.ResponseWriter, req *http.Request) {
		flushing(w, req.Context(), r, r.Flush)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, req *http.Request) {
		flushing(w, req.Context(), r, r.Reset)
	})
	return mux
}

// flushing runs a change that flushes the mappings and answers with the
// ones it dropped and the status after it.
func flushing(w http.ResponseWriter, ctx context.Context, r *Router, change func(context.Context) (int, error)) {
	before := mappings(ctx, r)
	n, err := change(ctx)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownPreset) || errors.Is(err, ErrUnknownALG) || errors.Is(err, ErrBadPinhole) {
			code = http.StatusBadRequest
		}
		ctl.WriteError(w, code, err)
		return
	}
	st, err := r.Status(ctx)
	if err != nil {
		ctl.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	ctl.WriteJSON(w, http.StatusOK, SetResult{Flushed: n, Dropped: before, Status: st})
}

// withDefaults replaces each "default" value with the startup one.
func (sr SettingsRequest) withDefaults(init Settings) SettingsRequest {
	if strings.EqualFold(sr.Preset, "default") {
		sr.Preset = init.Preset
	}
	if strings.EqualFold(sr.Pinhole, "default") {
		sr.Pinhole = init.Pinhole.String()
	}
	if strings.EqualFold(sr.ALG, "default") {
		sr.ALG = init.ALG
	}
	return sr
}

func (sr SettingsRequest) settings() (Settings, error) {
	s := Settings{Preset: sr.Preset, ALG: sr.ALG}
	if sr.Pinhole != "" {
		d, err := time.ParseDuration(sr.Pinhole)
		if err != nil {
			return s, fmt.Errorf("%w: %q: %w", ErrBadPinhole, sr.Pinhole, err)
		}
		if err := validatePinhole(d); err != nil {
			return s, err
		}
		s.Pinhole = d
	}
	if s == (Settings{}) {
		return s, errors.New("nothing to set: give preset, pinhole or alg")
	}
	return s, nil
}

// mappings are the translated mappings now, to say which a flush drops.
func mappings(ctx context.Context, r *Router) []Mapping {
	st, err := r.Status(ctx)
	if err != nil {
		return nil
	}
	var out []Mapping
	for _, m := range st.Mappings {
		if m.Translated {
			out = append(out, m)
		}
	}
	return out
}

// Client talks to a router's control socket.
type Client struct{ c ctl.Client }

// NewClient returns a client for the control socket at path.
func NewClient(path string) *Client { return &Client{c: ctl.Client{Socket: path}} }

// Status fetches the router's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.wrap(c.c.Get(ctx, "/status", &st))
}

// Set changes settings live.
func (c *Client) Set(ctx context.Context, sr SettingsRequest) (SetResult, error) {
	var res SetResult
	return res, c.wrap(c.c.Post(ctx, "/set", sr, &res))
}

// Reset puts the startup settings back and forgets all mappings.
func (c *Client) Reset(ctx context.Context) (SetResult, error) {
	var res SetResult
	return res, c.wrap(c.c.Post(ctx, "/reset", nil, &res))
}

// Flush forgets all mappings.
func (c *Client) Flush(ctx context.Context) (SetResult, error) {
	var res SetResult
	return res, c.wrap(c.c.Post(ctx, "/flush", nil, &res))
}

// wrap names the router in a failure the way its CLI always printed them
// ("natrouter: unknown preset ..."); the server's own errors mostly do.
func (c *Client) wrap(err error) error {
	if err == nil || strings.HasPrefix(err.Error(), "natrouter:") {
		return err
	}
	return fmt.Errorf("natrouter: %w", err)
}
